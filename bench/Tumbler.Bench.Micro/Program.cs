using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using Tumbler.Bench.Micro;

// Usage (from the repository root; see bench/README.md):
//   dotnet run -c Release --project bench/Tumbler.Bench.Micro [-- --filter '*Decrypt*']
// A short job (3 warm-up and 10 measured iterations, one process) so the four run in about two minutes;
// on a quiet machine, more iterations (WithIterationCount) tighten the error bars.
var shortJob = Job.Default.WithWarmupCount(3).WithIterationCount(10).WithLaunchCount(1).WithId("short");
var config = DefaultConfig.Instance
    .AddJob(shortJob)
    .AddExporter(MarkdownExporter.GitHub)
    .WithOptions(ConfigOptions.JoinSummary)
    .WithArtifactsPath(Path.Combine(Path.GetTempPath(), "tumbler-bench-micro")); // reports and logs, kept out of the repository
BenchmarkSwitcher.FromAssembly(typeof(HotPathBenchmarks).Assembly).Run(args.Length == 0 ? ["--filter", "*"] : args, config);
