using System.Data.Common;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Tumbler.Core.Keys;
using Tumbler.Core.Secrets;

namespace Tumbler.Server.Hosting;

/// <summary>Purges secrets whose recovery window has ended, and KMS-like keys whose deletion date has passed, at start and then periodically.</summary>
public sealed class DeletionPurger(SecretsService secrets, KeyService keys, ServerOptions options, ILogger<DeletionPurger> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.PurgeInterval);
        try
        {
            do
            {
                try
                {
                    foreach (var arn in await secrets.PurgeExpiredDeletionsAsync(stoppingToken))
                    {
                        logger.LogInformation("Purged {Arn}: its recovery window ended", arn);
                    }
                    foreach (var keyId in await keys.PurgeExpiredKeysAsync(stoppingToken))
                    {
                        logger.LogInformation("Deleted KMS-like key {KeyId}: its deletion date passed", keyId);
                    }
                }
                catch (DbException e)
                {
                    // The store is out of reach or failed: one line a pass while it lasts, not a stack trace.
                    logger.LogError("Purging deleted secrets failed in the store; will retry: {Reason}", e.Message);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    logger.LogError(e, "Purging deleted secrets failed; will retry");
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }
}
