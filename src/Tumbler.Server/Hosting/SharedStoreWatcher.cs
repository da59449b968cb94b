using System.Data.Common;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Tumbler.Core.Access;
using Tumbler.Core.Crypto;
using Tumbler.Core.Storage;

namespace Tumbler.Server.Hosting;

/// <summary>
/// On a store shared by several nodes: polls the store's configuration generation and, when another node changed
/// users, access keys, policies or KMS-like keys, drops this node's cached credentials and refreshes its key ring.
/// A change made on one node therefore holds on every node within one poll interval.
/// </summary>
public sealed class SharedStoreWatcher(ISecretStore store, KeyRing keyRing, IdentityService identities, ServerOptions options,
    ILogger<SharedStoreWatcher> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.SharedStorePollInterval);
        long? seen = null;
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    var generation = await store.GetConfigurationGenerationAsync(stoppingToken);
                    if (generation == seen)
                    {
                        continue;
                    }
                    // Credentials first: a disabled access key must stop working even if the key refresh fails.
                    identities.ChangedElsewhere();
                    foreach (var keyId in await keyRing.RefreshAsync(store, stoppingToken))
                    {
                        logger.LogError("KMS-like key {KeyId} cannot be unwrapped with this node's root key (was the root key rotated on another node?); " +
                            "restart this node with the current root key to read secrets encrypted under it", keyId);
                    }
                    // Again: a credential looked up between the two (sealed under material only now loaded) must not stay cached as unknown.
                    identities.ChangedElsewhere();
                    seen = generation;
                }
                catch (DbException e)
                {
                    // The store is out of reach or failed: one line a try while it lasts, as for requests, not a stack trace.
                    logger.LogWarning("Could not check the shared store for changes made by other nodes; will retry: {Reason}", e.Message);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    logger.LogWarning(e, "Could not check the shared store for changes made by other nodes; will retry");
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }
}
