using System.Data.Common;
using System.Globalization;
using Microsoft.Extensions.Logging;

namespace Tumbler.Rotators;

/// <summary>Opening a database connection as a rotation login, the same way for every driver.</summary>
internal static class DatabaseLogin
{
    /// <summary>
    /// Opens <paramref name="connection"/>, bounded even against a server that accepts but never answers
    /// (the driver's own timeout covers only part of the handshake). Returns the attempt, or the driver
    /// error for the caller to describe; the connection is disposed on every failure.
    /// </summary>
    public static async Task<(LoginAttempt Attempt, DbException? Error)> OpenAsync(DbConnection connection, DatabaseSecret secret, string how,
        int timeoutSeconds, ILogger logger, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(timeoutSeconds * 2 + 1));
        try
        {
            await connection.OpenAsync(timeout.Token);
            logger.LogInformation("Successfully established a connection ({Tls}) as user '{User}' with host: '{Host}'",
                how, secret.Username, secret.Host);
            return (LoginAttempt.Succeeded(connection), null);
        }
        catch (DbException e)
        {
            await connection.DisposeAsync();
            return (default, e);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            await connection.DisposeAsync();
            return (LoginAttempt.Failed($"{Where(secret)} {how}: no answer within {timeoutSeconds.ToString(CultureInfo.InvariantCulture)} s"), null);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>A failed login's text: who, where, how, and the driver's message without any secret value.</summary>
    public static LoginAttempt Failed(DatabaseSecret secret, string how, string reason) =>
        LoginAttempt.Failed($"{Where(secret)} {how}: {DatabaseRotationFunction.Redact(reason, secret.Password)}");

    /// <summary>The driver's message, with its inner cause when that adds something.</summary>
    public static string Describe(DbException e) =>
        e.InnerException is { } inner && !e.Message.Contains(inner.Message, StringComparison.Ordinal) ? $"{e.Message} ({inner.Message})" : e.Message;

    private static string Where(DatabaseSecret secret) => $"{secret.Username}@{secret.Host}:{secret.Port.ToString(CultureInfo.InvariantCulture)}";
}
