using System.Data.Common;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Tumbler.Core.Rotation;

namespace Tumbler.Server.Hosting;

/// <summary>
/// Drives the rotation engine as a pool of MaxConcurrency rotations: a free slot is filled as soon as a
/// rotation ends, a rotation is queued, or the poll interval passes, so one rotation stuck on a hung
/// database never holds up the others, and a backlog after downtime is worked off at once.
/// </summary>
public sealed class RotationScheduler(RotationEngine engine, RotationSignal signal, RotationOptions options, ILogger<RotationScheduler> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var running = new List<Task>();
        Task? wake = null;
        try
        {
            while (true)
            {
                running.RemoveAll(task => task.IsCompleted);
                try
                {
                    running.AddRange(await engine.StartDueAsync(options.MaxConcurrency - running.Count, stoppingToken));
                }
                catch (DbException e)
                {
                    // The store is out of reach or failed: one line a pass while it lasts, not a stack trace.
                    logger.LogError("A rotation pass failed in the store; will retry: {Reason}", e.Message);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    logger.LogError(e, "A rotation pass failed; will retry");
                }
                // One outstanding wait at a time, so a notification is never consumed by a forgotten waiter.
                wake ??= signal.WaitAsync(options.PollInterval, stoppingToken);
                await Task.WhenAny([.. running, wake]);
                if (wake.IsCompleted)
                {
                    await wake;
                    wake = null;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping: a rotation cut short resumes from its last completed step.
        }
        await Task.WhenAll(running.Select(task => task.ContinueWith(_ => { }, TaskScheduler.Default)));
    }
}
