using Tumbler.Core.Access;
using Tumbler.Core.Functions;
using Tumbler.Core.Rotation;

namespace Tumbler.Rotators.External;

/// <summary>
/// The registry the engine uses: a Lambda ARN names a built-in function (as before) or, failing that, a
/// function registered in the store (looked up at every step, so every node sees changes at once).
/// </summary>
public sealed class RotationFunctionRegistry(BuiltInRotationFunctions builtIns, FunctionService functions, FunctionRuntime runtime,
    IRotationCredentialIssuer credentials, FunctionConcurrency concurrency, ExternalFunctionOptions options) : IRotationFunctionRegistry
{
    /// <summary>Built-in functions only: external ones live in the store.</summary>
    public IRotationFunction? Find(string lambdaArn) => builtIns.Find(lambdaArn);

    public async ValueTask<IRotationFunction?> FindAsync(string lambdaArn, CancellationToken ct)
    {
        if (builtIns.Find(lambdaArn) is { } builtIn)
        {
            return builtIn;
        }
        if (!BuiltInRotationFunctions.TryParseFunctionName(lambdaArn, out var name))
        {
            return null;
        }
        return await functions.ResolveAsync(name, ct) is { } definition
            ? new ExternalRotationFunction(definition, runtime, credentials, concurrency, options)
            : null;
    }
}
