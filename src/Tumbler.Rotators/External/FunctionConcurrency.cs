using System.Collections.Concurrent;

namespace Tumbler.Rotators.External;

/// <summary>Caps concurrent invocations per function (its MaxConcurrency) and overall on this node.</summary>
public sealed class FunctionConcurrency(ExternalFunctionOptions options)
{
    private readonly SemaphoreSlim _overall = new(options.MaxConcurrency, options.MaxConcurrency);
    private readonly ConcurrentDictionary<string, (int Limit, SemaphoreSlim Slots)> _perFunction = new(StringComparer.Ordinal);

    /// <summary>Waits for a slot of the function and an overall one; dispose the result to release both.</summary>
    public async Task<IDisposable> AcquireAsync(string function, int limit, CancellationToken ct)
    {
        // A changed limit gets a new semaphore; invocations holding the old one release the old one.
        var entry = _perFunction.AddOrUpdate(function, _ => (limit, new SemaphoreSlim(limit, limit)),
            (_, existing) => existing.Limit == limit ? existing : (limit, new SemaphoreSlim(limit, limit)));
        await entry.Slots.WaitAsync(ct);
        try
        {
            await _overall.WaitAsync(ct);
        }
        catch
        {
            entry.Slots.Release();
            throw;
        }
        return new Release(entry.Slots, _overall);
    }

    private sealed class Release(SemaphoreSlim function, SemaphoreSlim overall) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0)
            {
                overall.Release();
                function.Release();
            }
        }
    }
}
