using System.CommandLine;
using Tumbler.Server.Audit;
using Tumbler.Server.Hosting;

namespace Tumbler.Cli;

/// <summary><c>tumbler audit verify</c>: check the audit log's hash chain and head.</summary>
internal static class AuditCommand
{
    /// <summary>Exit code when the data directory has no audit log at all.</summary>
    public const int NoLogExitCode = 2;

    public static Command Create()
    {
        var dataDir = new Option<string>("--data-dir")
        {
            Description = "Data directory whose audit/ log to check.",
            DefaultValueFactory = _ => ServeSettings.ResolveDataDir(null).Path,
        };
        var verify = new Command("verify", "Prove the audit log intact (exit 0) or name the first altered, removed or inserted record (exit 1); exit 2 when there is no audit log.") { dataDir };
        verify.SetAction(async (parse, _) =>
        {
            AuditVerification result;
            try
            {
                result = AuditVerifier.Verify(parse.GetValue(dataDir)!);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                await Console.Error.WriteLineAsync($"tumbler: cannot read the audit log: {e.Message}");
                return 1;
            }
            if (result.Intact)
            {
                Console.WriteLine(result.Message);
                return 0;
            }
            await Console.Error.WriteLineAsync($"tumbler: {result.Message}");
            return result.Problem == AuditProblem.NoLog ? NoLogExitCode : 1;
        });
        return new Command("audit", "Work with the audit log.") { verify };
    }
}
