using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Tumbler.Client.Model;

namespace Tumbler.Client.Configuration;

/// <summary>
/// Loads each secret's AWSCURRENT value into configuration keys; with a ReloadInterval, polls DescribeSecret
/// and reloads (firing the reload token) when a secret's AWSCURRENT version changed.
/// </summary>
public sealed class TumblerSecretsConfigurationProvider : ConfigurationProvider, IDisposable
{
    private const string Current = "AWSCURRENT";
    private readonly TumblerSecretsOptions _options;
    private ISecretsManager? _client;
    private bool _ownsClient;
    private readonly CancellationTokenSource _stop = new();
    private readonly Dictionary<string, SecretValue> _loaded = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _gate = new(1, 1);
    private Task? _polling;

    public TumblerSecretsConfigurationProvider(TumblerSecretsOptions options)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        if (options.ReloadInterval is { } interval && interval <= TimeSpan.Zero)
        {
            throw new ArgumentException("ReloadInterval must be positive.", nameof(options));
        }
        _client = options.Client;
    }

    /// <summary>
    /// The client, made from the environment at first use: no credentials is then a failure to read each secret, which
    /// <see cref="TumblerSecretsOptions.Optional"/> covers as it covers any other, and a later poll tries again.
    /// </summary>
    private ISecretsManager Client
    {
        get
        {
            if (_client is null)
            {
                _client = SecretsManagerClient.FromEnvironment();
                _ownsClient = true;
            }
            return _client;
        }
    }

    public override void Load()
    {
        // Configuration loading is synchronous; this runs once at build time (and on an explicit Reload()).
        Task.Run(() => LoadAllAsync(_stop.Token)).GetAwaiter().GetResult();
        if (_options.ReloadInterval is { } interval && _polling is null)
        {
            _polling = Task.Run(() => PollAsync(interval, _stop.Token));
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        try
        {
            _polling?.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }
        _stop.Dispose();
        if (_ownsClient && _client is IDisposable disposable)
        {
            disposable.Dispose();
        }
    }

    private async Task LoadAllAsync(CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        try
        {
            foreach (var id in _options.SecretIds)
            {
                try
                {
                    _loaded[id] = SecretValue.From(await Client.GetSecretValueAsync(new GetSecretValueRequest { SecretId = id }, ct));
                }
                catch (Exception e) when (_options.Optional && e is TumblerApiException or TumblerClientException)
                {
                    _loaded.Remove(id);
                }
            }
            Data = Map();
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task PollAsync(TimeSpan interval, CancellationToken ct)
    {
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                var errors = new List<Exception>();
                try
                {
                    if (await RefreshChangedAsync(errors, ct))
                    {
                        OnReload();
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // A reload subscriber that throws must not end the polling.
                    errors.Add(e);
                }
                foreach (var error in errors)
                {
                    _options.OnReloadError?.Invoke(error);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// One DescribeSecret per secret, by the id it was listed with (a secret deleted and made again under that name is
    /// the new one); GetSecretValue only for those whose AWSCURRENT moved. A secret that fails keeps its old values and
    /// its error goes into <paramref name="errors"/>; the others still reload. True when anything changed.
    /// </summary>
    private async Task<bool> RefreshChangedAsync(List<Exception> errors, CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        try
        {
            var changed = false;
            foreach (var id in _options.SecretIds)
            {
                try
                {
                    if (_loaded.TryGetValue(id, out var held))
                    {
                        var description = await Client.DescribeSecretAsync(new DescribeSecretRequest { SecretId = id }, ct);
                        var current = description.VersionIdsToStages.FirstOrDefault(v => v.Value.Contains(Current)).Key;
                        if (current is null || (current == held.VersionId && description.ARN == held.Arn))
                        {
                            continue;
                        }
                        _loaded[id] = SecretValue.From(await Client.GetSecretValueAsync(new GetSecretValueRequest { SecretId = id, VersionId = current }, ct));
                    }
                    else
                    {
                        // Optional and missing at the last load: it may exist now.
                        _loaded[id] = SecretValue.From(await Client.GetSecretValueAsync(new GetSecretValueRequest { SecretId = id }, ct));
                    }
                    changed = true;
                }
                catch (TumblerApiException e) when (e.ErrorCode == "ResourceNotFoundException" && !_loaded.ContainsKey(id))
                {
                    // Still missing: nothing to report.
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    errors.Add(e);
                }
            }
            if (changed)
            {
                Data = Map();
            }
            return changed;
        }
        finally
        {
            _gate.Release();
        }
    }

    private Dictionary<string, string?> Map()
    {
        var data = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var id in _options.SecretIds)
        {
            if (!_loaded.TryGetValue(id, out var value))
            {
                continue;
            }
            foreach (var (path, text) in Members(value))
            {
                if (KeyFor(id, path) is { } key)
                {
                    data[key] = text;
                }
            }
        }
        return data;
    }

    private string? KeyFor(string secretId, string path)
    {
        if (_options.KeyMapping is { } mapping)
        {
            return mapping(secretId, path);
        }
        var root = _options.Prefix ?? secretId.Replace('/', ConfigurationPath.KeyDelimiter[0]);
        return path.Length == 0 ? root : root.Length == 0 ? path : ConfigurationPath.Combine(root, path);
    }

    /// <summary>(member path, value) pairs: a JSON object flattened as the JSON configuration provider does, else the whole value under "".</summary>
    internal static IEnumerable<(string Path, string? Value)> Members(SecretValue value)
    {
        if (value.SecretString is not { } text)
        {
            return value.SecretBinary is { } bytes ? [("", Convert.ToBase64String(bytes.Span))] : [];
        }
        if (text.TrimStart().StartsWith('{'))
        {
            try
            {
                using var json = JsonDocument.Parse(text);
                var members = new List<(string, string?)>();
                Flatten(json.RootElement, "", members);
                return members;
            }
            catch (JsonException)
            {
            }
        }
        return [("", text)];
    }

    private static void Flatten(JsonElement element, string path, List<(string, string?)> into)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var member in element.EnumerateObject())
                {
                    Flatten(member.Value, path.Length == 0 ? member.Name : ConfigurationPath.Combine(path, member.Name), into);
                }
                break;
            case JsonValueKind.Array:
                var index = 0;
                foreach (var item in element.EnumerateArray())
                {
                    Flatten(item, ConfigurationPath.Combine(path, index.ToString(System.Globalization.CultureInfo.InvariantCulture)), into);
                    index++;
                }
                break;
            case JsonValueKind.String:
                into.Add((path, element.GetString()));
                break;
            case JsonValueKind.Null:
                into.Add((path, null));
                break;
            default:
                into.Add((path, element.GetRawText()));
                break;
        }
    }
}
