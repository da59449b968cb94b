using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Tumbler.Core.Rotation;

namespace Tumbler.Server.Hosting;

/// <summary>
/// Drives the rotation engine: a pass whenever a rotation is queued or the poll interval passes, and
/// passes back to back while there is work, so a backlog after downtime is caught up at once.
/// </summary>
public sealed class RotationScheduler(RotationEngine engine, RotationSignal signal, RotationOptions options, ILogger<RotationScheduler> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (true)
            {
                try
                {
                    while (await engine.RunOnceAsync(stoppingToken) > 0)
                    {
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    logger.LogError(e, "A rotation pass failed; will retry");
                }
                await signal.WaitAsync(options.PollInterval, stoppingToken);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping: a rotation cut short resumes from its last completed step.
        }
    }
}
