using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Tumbler.Core.Rotation;
using Tumbler.Rotators.MySql;
using Tumbler.Rotators.Postgres;

namespace Tumbler.Rotators;

/// <summary>
/// The rotation functions built into Tumbler, found by the Lambda ARNs users already type:
/// <c>arn:aws:lambda:REGION:ACCOUNT:function:NAME</c> with NAME one of the AWS template names.
/// </summary>
/// <remarks>
/// The ARN must be well formed (partition <c>aws</c> or <c>aws-*</c>, a region, a 12-digit account, an
/// optional version or alias qualifier); any region and account are accepted, because a
/// template-created function lives in the user's own account and region, which Tumbler does not
/// know. The function name is matched exactly (case-sensitive, as Lambda names are).
/// </remarks>
public sealed partial class BuiltInRotationFunctions : IRotationFunctionRegistry
{
    public const string MySqlSingleUser = "SecretsManagerRDSMySQLRotationSingleUser";
    public const string MySqlMultiUser = "SecretsManagerRDSMySQLRotationMultiUser";
    public const string MariaDbSingleUser = "SecretsManagerRDSMariaDBRotationSingleUser";
    public const string MariaDbMultiUser = "SecretsManagerRDSMariaDBRotationMultiUser";
    public const string PostgreSqlSingleUser = "SecretsManagerRDSPostgreSQLRotationSingleUser";
    public const string PostgreSqlMultiUser = "SecretsManagerRDSPostgreSQLRotationMultiUser";

    public static readonly IReadOnlyList<string> Names = [MySqlSingleUser, MySqlMultiUser, MariaDbSingleUser, MariaDbMultiUser, PostgreSqlSingleUser, PostgreSqlMultiUser];

    private readonly Dictionary<string, IRotationFunction> _functions;

    /// <param name="settings">Per-function settings by function name; a function without an entry uses the template defaults.</param>
    /// <param name="loggerFactory">Where the functions log (category <c>Tumbler.Rotators.NAME</c>); none when null.</param>
    public BuiltInRotationFunctions(IReadOnlyDictionary<string, RotatorSettings>? settings = null, ILoggerFactory? loggerFactory = null)
    {
        if (settings is not null)
        {
            foreach (var name in settings.Keys)
            {
                if (!Names.Contains(name))
                {
                    throw new ArgumentException($"There is no built-in rotation function named {name}; the built-in ones are {string.Join(", ", Names)}.", nameof(settings));
                }
            }
        }
        RotatorSettings? For(string name) => settings is not null && settings.TryGetValue(name, out var s) ? s : null;
        ILogger? Log(string name) => loggerFactory?.CreateLogger("Tumbler.Rotators." + name);

        _functions = new Dictionary<string, IRotationFunction>(StringComparer.Ordinal)
        {
            [MySqlSingleUser] = new MySqlSingleUserRotator(MySqlFlavor.MySql, For(MySqlSingleUser), Log(MySqlSingleUser)),
            [MySqlMultiUser] = new MySqlMultiUserRotator(MySqlFlavor.MySql, For(MySqlMultiUser), Log(MySqlMultiUser)),
            [MariaDbSingleUser] = new MySqlSingleUserRotator(MySqlFlavor.MariaDb, For(MariaDbSingleUser), Log(MariaDbSingleUser)),
            [MariaDbMultiUser] = new MySqlMultiUserRotator(MySqlFlavor.MariaDb, For(MariaDbMultiUser), Log(MariaDbMultiUser)),
            [PostgreSqlSingleUser] = new PostgresSingleUserRotator(For(PostgreSqlSingleUser), Log(PostgreSqlSingleUser)),
            [PostgreSqlMultiUser] = new PostgresMultiUserRotator(For(PostgreSqlMultiUser), Log(PostgreSqlMultiUser)),
        };
    }

    public IRotationFunction? Find(string lambdaArn) =>
        TryParseFunctionName(lambdaArn, out var name) && _functions.TryGetValue(name, out var function) ? function : null;

    /// <summary>The function name of a well-formed Lambda function ARN (any region and account).</summary>
    public static bool TryParseFunctionName(string? lambdaArn, out string name)
    {
        var match = lambdaArn is null ? Match.Empty : LambdaArn().Match(lambdaArn);
        name = match.Success ? match.Groups["name"].Value : "";
        return match.Success;
    }

    // arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER] (Lambda's own ARN pattern, narrowed).
    [GeneratedRegex(@"^arn:aws(-[a-z]+)*:lambda:[a-z0-9]+(-[a-z0-9]+)*:\d{12}:function:(?<name>[a-zA-Z0-9\-_]{1,64})(:(\$LATEST|[a-zA-Z0-9\-_]{1,128}))?$")]
    private static partial Regex LambdaArn();
}
