namespace Tumbler.Client.Tests.Support;

/// <summary>Test classes that change the process's AWS_* variables: they run one at a time, never beside each other.</summary>
[CollectionDefinition(Collection, DisableParallelization = true)]
public sealed class ProcessEnvironment
{
    public const string Collection = "Process environment";
}
