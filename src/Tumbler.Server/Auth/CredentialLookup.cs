using System.Collections.Concurrent;
using Tumbler.Core.Access;

namespace Tumbler.Server.Auth;

/// <summary>
/// The root key pair, then the users' access keys from the store. Resolved keys are cached with the
/// identity generation they were read at, so any change to users, keys or policies (a disabled or
/// deleted key included) takes effect on the very next request.
/// Session credentials (ASIA...) are read from the store on every request, never cached: a revoked one
/// is refused at once on every node.
/// </summary>
public sealed class CredentialLookup(AccessKeyCredential root, IdentityService identities, SessionCredentialService? sessions = null) : ICredentialLookup
{
    private const int MaxCachedKeys = 10_000;
    private readonly ConcurrentDictionary<string, (int Generation, AccessKeyCredential? Credential)> _cache = new(StringComparer.Ordinal);

    public async ValueTask<AccessKeyCredential?> FindAsync(string accessKeyId, CancellationToken ct)
    {
        if (accessKeyId == root.AccessKeyId)
        {
            return root;
        }
        if (sessions is not null && SessionCredentialService.IsSessionKey(accessKeyId))
        {
            return await sessions.ResolveAsync(accessKeyId, ct) is { } session
                ? new AccessKeyCredential(accessKeyId, session.SecretAccessKey, session.Principal, session.SessionTokenSha256, session.Expiration)
                : null;
        }
        var generation = identities.Generation;
        if (_cache.TryGetValue(accessKeyId, out var cached) && cached.Generation == generation)
        {
            return cached.Credential;
        }
        var resolved = await identities.ResolveAccessKeyAsync(accessKeyId, ct);
        var credential = resolved is { } found ? new AccessKeyCredential(accessKeyId, found.SecretAccessKey, found.Principal) : null;
        if (_cache.Count >= MaxCachedKeys)
        {
            _cache.Clear();
        }
        // Tagged with the generation read before the lookup: a change made meanwhile makes this entry stale at once.
        _cache[accessKeyId] = (generation, credential);
        return credential;
    }
}
