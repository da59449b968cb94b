using System.Diagnostics;
using System.Text;
using Tumbler.Core.Rotation;

namespace Tumbler.Rotators.External;

/// <summary>
/// Runs one step of a command or Python function as a child process: the event JSON on standard input,
/// success when it exits with code 0. Standard output is read and dropped; the tail of standard error
/// (at most the output cap) goes into the failure message. On timeout the whole process tree is killed.
/// </summary>
internal static class ProcessInvoker
{
    public static async Task RunAsync(string functionName, ProcessStartInfo start, byte[] eventJson, TimeSpan timeout, int outputCap, CancellationToken ct)
    {
        start.UseShellExecute = false;
        start.RedirectStandardInput = true;
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.StandardOutputEncoding = Encoding.UTF8;
        start.StandardErrorEncoding = Encoding.UTF8;
        using var process = new Process { StartInfo = start };
        try
        {
            process.Start();
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new RotationStepException($"Function {functionName} could not be started: {e.Message}");
        }
        var stderr = new TailBuffer(outputCap);
        var stdoutDone = DrainAsync(process.StandardOutput, null);
        var stderrDone = DrainAsync(process.StandardError, stderr);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        try
        {
            try
            {
                await process.StandardInput.BaseStream.WriteAsync(eventJson, deadline.Token);
                process.StandardInput.Close();
            }
            catch (IOException)
            {
                // The function exited (or closed its input) without reading the event: its exit code says how it went.
            }
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            KillTree(process);
            await WaitQuietlyAsync(Task.WhenAll(stdoutDone, stderrDone));
            ct.ThrowIfCancellationRequested();
            throw new RotationStepException($"Function {functionName} timed out after {timeout.TotalSeconds:0.###} seconds and was killed{Stderr(stderr)}");
        }
        // A background grandchild may keep the pipes open: don't wait for it long.
        await WaitQuietlyAsync(Task.WhenAll(stdoutDone, stderrDone));
        if (process.ExitCode != 0)
        {
            throw new RotationStepException($"Function {functionName} exited with code {process.ExitCode}{Stderr(stderr)}");
        }
    }

    private static string Stderr(TailBuffer stderr) => stderr.ToString() is { Length: > 0 } text ? $"; stderr: {text}" : "";

    private static void KillTree(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // Gone meanwhile, or a child we may not signal.
        }
    }

    private static async Task WaitQuietlyAsync(Task task)
    {
        try
        {
            await task.WaitAsync(TimeSpan.FromSeconds(2));
        }
        catch (TimeoutException)
        {
            // Output held open by a process we do not wait for.
        }
    }

    private static async Task DrainAsync(StreamReader reader, TailBuffer? keep)
    {
        var buffer = new char[4096];
        try
        {
            int read;
            while ((read = await reader.ReadAsync(buffer)) > 0)
            {
                keep?.Append(buffer.AsSpan(0, read));
            }
        }
        catch (IOException)
        {
            // The pipe broke with the process.
        }
        catch (ObjectDisposedException)
        {
            // Disposed after a kill.
        }
    }

    /// <summary>The last <c>cap</c> characters written, control characters (but newline and tab) shown as '?'.</summary>
    private sealed class TailBuffer(int cap)
    {
        private readonly StringBuilder _text = new();
        private bool _truncated;

        public void Append(ReadOnlySpan<char> chunk)
        {
            lock (_text)
            {
                foreach (var c in chunk)
                {
                    _text.Append(char.IsControl(c) && c is not '\n' and not '\t' ? '?' : c);
                }
                if (_text.Length > cap * 2)
                {
                    _text.Remove(0, _text.Length - cap);
                    _truncated = true;
                }
            }
        }

        public override string ToString()
        {
            lock (_text)
            {
                var text = _text.ToString().TrimEnd();
                if (text.Length > cap)
                {
                    text = text[^cap..];
                    _truncated = true;
                }
                return _truncated ? "..." + text : text;
            }
        }
    }
}
