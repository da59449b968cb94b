namespace Tumbler.Core.Storage;

/// <summary>
/// External rotation functions and the short-lived session credentials issued to them. Anything secret
/// (a function's environment values and HTTP shared secret, a session's secret key) is stored sealed
/// (see KeyRing.Seal / SealCredential); a session token is stored only as its SHA-256.
/// Every method is one transaction.
/// </summary>
public interface IFunctionStore
{
    Task<FunctionEntity?> FindFunctionAsync(string name, CancellationToken ct);
    Task<IReadOnlyList<FunctionEntity>> ListFunctionsAsync(CancellationToken ct);
    /// <summary>False when the name is taken.</summary>
    Task<bool> InsertFunctionAsync(FunctionEntity function, CancellationToken ct);
    /// <summary>False when there is no such function.</summary>
    Task<bool> UpdateFunctionAsync(FunctionEntity function, CancellationToken ct);
    /// <summary>False when there is no such function.</summary>
    Task<bool> DeleteFunctionAsync(string name, CancellationToken ct);

    /// <summary>Stores a new session credential and removes every one that expired before <paramref name="purgeExpiredBefore"/>.</summary>
    Task InsertSessionAsync(SessionCredentialEntity session, DateTimeOffset purgeExpiredBefore, CancellationToken ct);
    Task<SessionCredentialEntity?> FindSessionAsync(string accessKeyId, CancellationToken ct);
    Task DeleteSessionAsync(string accessKeyId, CancellationToken ct);
}

/// <summary>
/// A registered rotation function. <see cref="SealedConfig"/> holds the environment values and the
/// HTTP shared secret, sealed under the default key and bound to the function's name; the
/// environment's names are kept in clear so they can be listed.
/// </summary>
public sealed record FunctionEntity(
    string Name,
    string Kind,
    string? Command,
    string? PythonHandler,
    string? WorkingDirectory,
    string? Url,
    int TimeoutSeconds,
    int MaxConcurrency,
    IReadOnlyList<string> EnvironmentNames,
    byte[]? SealedConfig,
    DateTimeOffset CreatedDate,
    DateTimeOffset LastModified);

/// <summary>A short-lived credential (ASIA...) scoped to one secret, given to a function for one rotation step.</summary>
public sealed record SessionCredentialEntity(
    string AccessKeyId,
    byte[] WrappedSecret,
    string SessionTokenSha256,
    string SecretArn,
    string FunctionName,
    string VersionId,
    DateTimeOffset Expiration,
    DateTimeOffset CreatedDate);
