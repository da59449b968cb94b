using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Tumbler.Core.Access;
using Tumbler.Core.Audit;
using Tumbler.Core.Crypto;
using Tumbler.Core.Keys;
using Tumbler.Core.Functions;
using Tumbler.Core.Rotation;
using Tumbler.Core.Secrets;
using Tumbler.Core.Storage;
using Tumbler.Server.Audit;
using Tumbler.Server.Auth;
using Tumbler.Server.Metrics;
using Prometheus;
using Tumbler.Rotators;
using Tumbler.Rotators.External;
using Tumbler.Server.Protocol;
using Tumbler.Storage.Postgres;
using Tumbler.Storage.Sqlite;
using Tumbler.Server.Transport;

namespace Tumbler.Server.Hosting;

/// <summary>
/// The composition root: opens the data directory (store, root key, root credentials), wires the
/// services and serves the API on Kestrel.
/// </summary>
public sealed class TumblerServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private readonly FileStream _directoryLock;

    private TumblerServer(WebApplication app, IReadOnlyList<Uri> endpoints, AccessKeyCredential root, FileStream directoryLock)
    {
        _app = app;
        _directoryLock = directoryLock;
        Endpoints = endpoints;
        Root = root;
    }

    /// <summary>The first listen address (http:// or https://).</summary>
    public Uri Endpoint => Endpoints[0];
    /// <summary>Every listen address, in the order given.</summary>
    public IReadOnlyList<Uri> Endpoints { get; }
    public AccessKeyCredential Root { get; }
    public IServiceProvider Services => _app.Services;

    /// <summary>Opens the data directory and starts serving; throws <see cref="StartupException"/> with the reason it can't.</summary>
    public static async Task<TumblerServer> StartAsync(ServerOptions options, TextWriter output, CancellationToken ct)
    {
        options.Validate();
        options.RequireNamedFiles();
        var endPoints = options.ListenEndPoints();
        for (var i = 0; i < endPoints.Count; i++)
        {
            EnsureAddressIsFree(endPoints[i], options.Listen[i]);
        }
        // Given PEM files are checked before anything is created; a self-signed one lives in the data directory.
        var certificate = options.TlsSelfSigned ? null : TlsCertificates.Load(options, output);
        var dataDirectoryInUse = Directory.Exists(options.DataDirectory)
            && Directory.EnumerateFileSystemEntries(options.DataDirectory).Any(entry => Path.GetFileName(entry) != AuditFormat.DirectoryName);
        CreateDataDirectory(options.DataDirectory, output);
        var directoryLock = LockDataDirectory(options.DataDirectory);
        ISecretStore store;
        try
        {
            store = await OpenStoreAsync(options, output, ct);
        }
        catch
        {
            await directoryLock.DisposeAsync();
            throw;
        }
        try
        {
            certificate ??= TlsCertificates.Load(options, output);
            var transport = new TransportSettings(endPoints, certificate, options.TrustedProxyNetworks());
            var (rootKey, keptInDataDirectory) = await LoadRootKeyAsync(store, options, output, ct);
            KeyRing keyRing;
            try
            {
                // A server whose key is DATA_DIR/root.key also looks for it in root.key and root.key.next: a root key rotation
                // run beside it (tumbler keys rotate-root) writes the next key there, so key creation goes on through the
                // rotation. A key given in the environment or by passphrase is the only one: a root.key left in the directory
                // must not stand in for a wrong one.
                var rootKeys = new RootKeys(rootKey, keptInDataDirectory
                    ? [Path.Combine(options.DataDirectory, ServerOptions.RootKeyFile), Path.Combine(options.DataDirectory, ServerOptions.NextRootKeyFile)]
                    : []);
                keyRing = await KeyRing.OpenAsync(store, rootKeys, options.Regions[0], options.AccountId, TimeProvider.System, ct,
                    keepInterruptedRotation: options.UsesSharedStore);
            }
            catch (RootKeyMismatchException e)
            {
                throw new StartupException($"{e.Message} Refusing to start: give the store's current root key (the one it was created with, or the one " +
                    "the last tumbler keys rotate-root moved it to).");
            }
            var root = LoadRootCredentials(options, output);
            var audit = await OpenAuditLogAsync(options, dataDirectoryInUse, output);
            var app = Build(options, transport, store, keyRing, root, audit);
            try
            {
                await app.StartAsync(ct);
            }
            catch (IOException e)
            {
                await app.DisposeAsync();
                throw new StartupException($"Cannot listen on {string.Join(", ", options.Listen)}: {e.Message}");
            }
            var addresses = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
                .Features.Get<IServerAddressesFeature>()!.Addresses;
            var served = addresses.Select(a => new Uri(a.Replace("[::]", "localhost", StringComparison.Ordinal))).ToList();
            // External functions call back on the first listen address (a wildcard address read as loopback).
            var own = new Uri(addresses.First().Replace("[::]", "[::1]", StringComparison.Ordinal).Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal));
            app.Services.GetRequiredService<FunctionRuntime>().SetEndpoint(own,
                options.TlsSelfSigned ? Path.GetFullPath(Path.Combine(options.DataDirectory, ServerOptions.TlsDirectory, TlsCertificates.CertificateFile)) : null);
            return new TumblerServer(app, served, root, directoryLock);
        }
        catch
        {
            await store.DisposeAsync();
            await directoryLock.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Locks the data directory for this server's life. A second server on it would serve its own cached reads over the
    /// first one's writes, and interleave its audit records with the first one's: a hash chain broken for good.
    /// </summary>
    private static FileStream LockDataDirectory(string dataDirectory)
    {
        var path = Path.Combine(dataDirectory, ServerOptions.LockFile);
        // macOS has no FileStream.Lock: an exclusive flock there (FileShare.None).
        var options = new FileStreamOptions
        {
            Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = OperatingSystem.IsMacOS() ? FileShare.None : FileShare.ReadWrite,
        };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        FileStream? stream = null;
        try
        {
            stream = new FileStream(path, options);
            // A record lock (fcntl on Linux), gone with the process however it ends. Unlike FileShare.None's flock, it
            // does not stop others from reading the file, as a scan of the data directory does.
            if (!OperatingSystem.IsMacOS())
            {
                stream.Lock(0, 1);
            }
            return stream;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            if (stream is null)
            {
                // Not a lock held by someone else: the lock file itself cannot be written (a read-only filesystem, permissions).
                throw new StartupException($"Cannot write {Path.GetFullPath(path)} ({e.Message}): the server needs a writable data directory.");
            }
            stream.Dispose();
            throw new StartupException(
                $"Cannot lock the data directory {Path.GetFullPath(dataDirectory)} ({e.Message}): is another tumbler serve using it? "
                + "One server serves a data directory; for several, share a PostgreSQL store.");
        }
    }

    public Task WaitForShutdownAsync() => _app.WaitForShutdownAsync();

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        await _directoryLock.DisposeAsync();
    }

    private static WebApplication Build(ServerOptions options, TransportSettings transport, ISecretStore store, KeyRing keyRing,
        AccessKeyCredential root, IAuditLog audit)
    {
        // Tumbler reads no appsettings.json: its settings come from ServeSettings. The content root is the install directory
        // and nothing watches files: by default ASP.NET Core watches the working directory recursively for appsettings
        // changes, and a server started in (or above) its data directory paid an inotify event for every audit write.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ApplicationName = "Tumbler",
            ContentRootPath = AppContext.BaseDirectory,
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
        });
        builder.ConfigureTransport(transport);
        builder.Logging.ClearProviders();
        // Scopes carry ASP.NET Core's request scope (RequestId = HttpContext.TraceIdentifier, the x-amzn-RequestId header and the
        // audit record's requestId) on every line logged while a request is served; it exists while the hosting logger is enabled
        // at Critical, which the "Microsoft" filter below always leaves on.
        if (options.LogFormat == "json")
        {
            builder.Logging.AddJsonConsole(console =>
            {
                console.IncludeScopes = true;
                console.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
                console.UseUtcTimestamp = true;
            });
        }
        else
        {
            builder.Logging.AddSimpleConsole(console =>
            {
                console.SingleLine = true;
                console.IncludeScopes = true;
                console.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
                console.UseUtcTimestamp = true;
            });
        }
        builder.Logging.SetMinimumLevel(options.LogLevel);
        builder.Logging.AddFilter("Microsoft", options.LogLevel > LogLevel.Warning ? options.LogLevel : LogLevel.Warning);

        var services = builder.Services;
        services.AddSingleton(options);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(store);
        services.AddSingleton(keyRing);
        services.AddSingleton(audit);
        services.AddSingleton(new SecretsOptions { AccountId = options.AccountId });
        services.AddSingleton(sp => new BuiltInRotationFunctions(
            options.RotationCaFile is { } caFile ? BuiltInRotationFunctions.Names.ToDictionary(name => name, _ => new RotatorSettings { TlsCaFile = caFile }) : null,
            sp.GetRequiredService<ILoggerFactory>()));
        services.AddSingleton(sp => (IFunctionStore)store);
        services.AddSingleton(sp => new FunctionService(sp.GetRequiredService<IFunctionStore>(), keyRing, sp.GetRequiredService<AccessControl>(),
            TimeProvider.System, sp.GetRequiredService<SecretsOptions>(), BuiltInRotationFunctions.Names));
        services.AddSingleton(sp => new KeyService(store, keyRing, sp.GetRequiredService<AccessControl>(), TimeProvider.System,
            sp.GetRequiredService<SecretsOptions>()));
        services.AddSingleton<SessionCredentialService>();
        services.AddSingleton<IRotationCredentialIssuer>(sp => sp.GetRequiredService<SessionCredentialService>());
        services.AddSingleton(new FunctionRuntime());
        services.AddSingleton(options.Functions);
        services.AddSingleton<FunctionConcurrency>();
        services.AddSingleton<IRotationFunctionRegistry, RotationFunctionRegistry>();
        services.AddSingleton<RotationSignal>();
        services.AddSingleton(options.Rotation);
        services.AddSingleton<AccessControl>();
        services.AddSingleton<SecretsService>();
        services.AddSingleton(sp => (IIdentityStore)store);
        services.AddSingleton<IdentityService>();
        services.AddSingleton<RotationEngine>();
        services.AddHostedService<RotationScheduler>();
        services.AddSingleton<ICredentialLookup>(sp => new CredentialLookup(root, sp.GetRequiredService<IdentityService>(),
            sp.GetRequiredService<SessionCredentialService>()));
        services.AddSingleton(new SigV4Options
        {
            Regions = options.Regions.ToHashSet(StringComparer.Ordinal),
            AccountId = options.AccountId,
            AcceptAnyCredentials = options.AcceptAnyCredentials,
            Services = ["secretsmanager", "iam", "lambda", "kms"],
        });
        services.AddSingleton<SigV4Verifier>();
        services.AddSingleton<ServerMetrics>();
        services.AddSingleton<ApiEndpoint>();
        services.AddSingleton(new AccessKeyThrottle(options.RateLimit, options.RateBurst));
        services.AddSingleton<UnauthenticatedAuditLimit>();
        services.AddHostedService<DeletionPurger>();
        if (options.UsesSharedStore)
        {
            services.AddHostedService(sp => new SharedStoreWatcher(store, keyRing, sp.GetRequiredService<IdentityService>(), options,
                sp.GetRequiredService<ILogger<SharedStoreWatcher>>()));
        }

        var app = builder.Build();
        app.UseTransport(transport);
        // The API (POST /, nearly every request) is answered before routing, which only the health, metrics and
        // fallback endpoints need.
        var endpoint = app.Services.GetRequiredService<ApiEndpoint>();
        app.Use(next => http => HttpMethods.IsPost(http.Request.Method) && http.Request.Path.Value == "/" ? endpoint.HandleAsync(http) : next(http));
        app.UseRouting();
        app.MapHealth(store, keyRing, audit);
        if (options.Metrics)
        {
            app.MapMetrics("/metrics", app.Services.GetRequiredService<ServerMetrics>().Registry);
        }
        app.MapFallback(http =>
        {
            http.Response.Headers["x-amzn-RequestId"] = http.TraceIdentifier;
            return ErrorWriter.WriteAsync(http, StatusCodes.Status404NotFound, "UnknownOperationException",
                "Tumbler serves the Secrets Manager API with POST /.", lowerCaseMessage: true);
        });
        app.Lifetime.ApplicationStopped.Register(() =>
        {
            (audit as IAsyncDisposable)?.DisposeAsync().AsTask().GetAwaiter().GetResult();
            store.DisposeAsync().AsTask().GetAwaiter().GetResult();
        });
        return app;
    }

    /// <summary>Says "address in use" in one line before anything is created, rather than as a host failure.</summary>
    private static void EnsureAddressIsFree(IPEndPoint endPoint, string listen)
    {
        using var probe = new System.Net.Sockets.Socket(endPoint.AddressFamily, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        try
        {
            probe.Bind(endPoint);
        }
        catch (System.Net.Sockets.SocketException e)
        {
            throw new StartupException($"Cannot listen on {listen}: {e.Message}");
        }
    }

    private static async Task<ISecretStore> OpenStoreAsync(ServerOptions options, TextWriter output, CancellationToken ct)
    {
        var dataDirectory = options.DataDirectory;
        if (options.UsesSharedStore)
        {
            return await OpenPostgresStoreAsync(options.Store!, ct);
        }
        var databasePath = Path.Combine(dataDirectory, ServerOptions.DatabaseFile);
        if (!File.Exists(databasePath) && !OperatingSystem.IsWindows())
        {
            // SQLite gives its -wal and -shm files the database file's mode: owner only, like the root key.
            try
            {
                File.Create(databasePath, 0, FileOptions.None).Dispose();
                File.SetUnixFileMode(databasePath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new StartupException($"Cannot create the store in {dataDirectory}: {e.Message}");
            }
        }
        var store = new SqliteSecretStore(databasePath);
        try
        {
            await store.InitializeAsync(ct);
            // This server has the data directory to itself: a rotation lease in it is one the last run held when it stopped.
            // Freed, the rotation resumes at the scheduler's first poll instead of when the lease would have expired
            // (a minute), which matters most after setSecret of a single-user rotation: the database then already has
            // the pending password and AWSCURRENT does not.
            var interrupted = await store.ReleaseRotationLeasesAsync(ct);
            if (interrupted > 0)
            {
                output.WriteLine($"Resuming {interrupted} rotation(s) interrupted when the server last stopped");
            }
            return store;
        }
        catch (Exception e) when (e is SqliteException or IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            await store.DisposeAsync();
            throw new StartupException($"Cannot open the store in {dataDirectory}: {e.Message}");
        }
    }

    private static void CreateDataDirectory(string dataDirectory, TextWriter output)
    {
        try
        {
            if (!Directory.Exists(dataDirectory))
            {
                if (OperatingSystem.IsWindows())
                {
                    Directory.CreateDirectory(dataDirectory);
                }
                else
                {
                    Directory.CreateDirectory(dataDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                }
                output.WriteLine($"Created data directory {Path.GetFullPath(dataDirectory)}");
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StartupException($"Cannot create the data directory {dataDirectory}: {e.Message}");
        }
    }

    /// <summary>The PostgreSQL store; the message of a failure names the server but never the password.</summary>
    private static async Task<ISecretStore> OpenPostgresStoreAsync(string connection, CancellationToken ct)
    {
        PostgresSecretStore store;
        try
        {
            store = new PostgresSecretStore(connection);
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw new StartupException($"--store: {e.Message}");
        }
        try
        {
            await store.InitializeAsync(ct);
            return store;
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or InvalidOperationException or TimeoutException)
        {
            await store.DisposeAsync();
            throw new StartupException($"Cannot open the PostgreSQL store {PostgresSecretStore.Mask(connection)}: {e.Message}");
        }
    }

    /// <summary>
    /// The root key: TUMBLER_ROOT_KEY, else derived from a passphrase (--root-key-passphrase-file or
    /// TUMBLER_ROOT_KEY_PASSPHRASE, with the salt kept in the store), else DATA_DIR/root.key (created on a new store).
    /// </summary>
    /// <returns>The key, and whether it is the data directory's root.key (read or made now).</returns>
    private static async Task<(byte[] Key, bool KeptInDataDirectory)> LoadRootKeyAsync(ISecretStore store, ServerOptions options, TextWriter output, CancellationToken ct)
    {
        var dataDirectory = options.DataDirectory;
        var fromEnvironment = Environment.GetEnvironmentVariable(RootKeyFile.EnvironmentVariable);
        var passphrase = Environment.GetEnvironmentVariable(RootKeyFile.PassphraseVariable);
        var path = Path.Combine(dataDirectory, ServerOptions.RootKeyFile);
        try
        {
            if (string.IsNullOrWhiteSpace(fromEnvironment) && (options.RootKeyPassphraseFile is not null || !string.IsNullOrEmpty(passphrase)))
            {
                return (await DeriveRootKeyAsync(store,
                    options.RootKeyPassphraseFile is { } file ? RootKeyFile.ReadPassphrase(file) : passphrase!, output, ct), false);
            }
            if (!string.IsNullOrWhiteSpace(fromEnvironment))
            {
                return (RootKeyFile.Parse(fromEnvironment, RootKeyFile.EnvironmentVariable), false);
            }
            if (File.Exists(path))
            {
                return (RootKeyFile.Read(path), true);
            }
            if (await store.HasDataAsync(ct) || await store.GetSettingAsync("root_key_check", ct) is not null)
            {
                throw new StartupException(
                    $"The root key {Path.GetFullPath(path)} is missing, but {(options.UsesSharedStore ? "the shared store" : $"the store in {dataDirectory}")} " +
                    "holds data encrypted with it. " +
                    $"Restore the file or set {RootKeyFile.EnvironmentVariable}; a new key would make the data unreadable.");
            }
            if (options.UsesSharedStore)
            {
                throw new StartupException(
                    $"With a shared store every node needs the same root key, so none is made here: set {RootKeyFile.EnvironmentVariable} " +
                    $"(for a new deployment: head -c 32 /dev/urandom | base64), put it in {Path.GetFullPath(path)}, or use a passphrase.");
            }
            var key = RootKeyFile.Create(path);
            await output.WriteLineAsync($"Created root key {Path.GetFullPath(path)} (mode 0600): keep it safe and apart from backups of the store.");
            return (key, true);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            throw new StartupException($"Cannot read the root key: {e.Message}");
        }
    }

    private static async Task<byte[]> DeriveRootKeyAsync(ISecretStore store, string passphrase, TextWriter output, CancellationToken ct)
    {
        var salt = await store.GetSettingAsync(RootKeyFile.SaltSetting, ct);
        if (salt is null)
        {
            if (await store.HasDataAsync(ct) || await store.GetSettingAsync(KeyRing.RootKeyCheckSetting, ct) is not null)
            {
                throw new StartupException("This store's root key was not derived from a passphrase (it has no salt); start it with its root key.");
            }
            // Nodes starting together on a new shared store all derive from the first salt stored.
            salt = await store.InitializeSettingAsync(RootKeyFile.SaltSetting,
                Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)), ct);
            await output.WriteLineAsync($"Deriving the root key from the passphrase (PBKDF2-HMAC-SHA256, {RootKeyFile.PassphraseIterations} iterations, new salt in the store).");
        }
        return RootKeyFile.FromPassphrase(passphrase, Convert.FromBase64String(salt));
    }

    private static async Task<IAuditLog> OpenAuditLogAsync(ServerOptions options, bool dataDirectoryInUse, TextWriter output)
    {
        switch (options.Audit)
        {
            case "none":
                output.WriteLine("WARNING: --audit none: requests are not recorded.");
                return NoAuditLog.Instance;
            case "file":
                try
                {
                    var log = FileAuditLog.Open(options.DataDirectory);
                    if (log.StartupNote is { } note)
                    {
                        output.WriteLine(note);
                    }
                    if (log.StartedNewChain && dataDirectoryInUse)
                    {
                        // No log and no head in a directory that served before: a removed audit directory would otherwise
                        // pass unseen (a new chain verifies on its own). Said here and as the new chain's first record.
                        var warning = $"audit: {log.Directory} held no audit log, so a new chain starts at seq 1, but the data directory "
                            + "was in use: if it had an audit log (it does unless it ran with --audit none or was restored without one), "
                            + "that log was removed.";
                        output.WriteLine("WARNING: " + warning);
                        await log.AppendAsync(new AuditRecord
                        {
                            Time = DateTimeOffset.UtcNow, RequestId = "startup", Operation = "StartAuditLog", Outcome = AuditOutcome.Success, Detail = warning,
                        }, CancellationToken.None);
                    }
                    return log;
                }
                catch (AuditUnavailableException e)
                {
                    throw new StartupException(e.Message);
                }
            default:
                throw new StartupException($"--audit {options.Audit}: give file or none.");
        }
    }

    private static AccessKeyCredential LoadRootCredentials(ServerOptions options, TextWriter output)
    {
        var principal = Principal.Root(options.AccountId);
        try
        {
            if (RootCredentials.FromEnvironment() is { } pair)
            {
                return new AccessKeyCredential(pair.AccessKeyId, pair.SecretAccessKey, principal);
            }
        }
        catch (InvalidOperationException e)
        {
            throw new StartupException(e.Message);
        }
        var path = Path.Combine(options.DataDirectory, ServerOptions.CredentialsFile);
        try
        {
            if (File.Exists(path))
            {
                var existing = RootCredentials.ReadFile(path);
                return new AccessKeyCredential(existing.AccessKeyId, existing.SecretAccessKey, principal);
            }
            var created = RootCredentials.CreateFile(path);
            output.WriteLine($"Created root credentials {Path.GetFullPath(path)} (mode 0600). Use them with:");
            output.WriteLine($"  export AWS_SHARED_CREDENTIALS_FILE={Path.GetFullPath(path)} AWS_DEFAULT_REGION={options.Regions[0]}");
            return new AccessKeyCredential(created.AccessKeyId, created.SecretAccessKey, principal);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            throw new StartupException($"Cannot read the root credentials: {e.Message}");
        }
    }
}
