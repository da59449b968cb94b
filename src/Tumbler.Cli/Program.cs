using System.CommandLine;
using Tumbler.Cli;

var root = new RootCommand("Tumbler: a self-hosted secrets manager that speaks the AWS Secrets Manager API and rotates database passwords.");
root.Subcommands.Add(ServeCommand.Create());
root.Subcommands.Add(IamCommand.Create());
root.Subcommands.Add(FunctionsCommand.Create());
root.Subcommands.Add(KeysCommand.Create());
root.Subcommands.Add(AuditCommand.Create());
root.Subcommands.Add(AgentCommand.Create());
foreach (var command in SecretsCommands.Create())
{
    root.Subcommands.Add(command);
}
root.Subcommands.Add(ExecCommand.Create());
root.Subcommands.Add(ConfigureCommand.Create());
root.Subcommands.Add(BackupCommand.CreateBackup());
var parsed = root.Parse(args);
if (parsed.Errors.Count > 0 && parsed.Action is not System.CommandLine.Help.HelpAction)
{
    // One line on standard error, as every other failure. (System.CommandLine's default also printed the whole help on
    // standard output, where `PW=$(tumbler get db --bogus)` took it for the value.)
    var command = new List<string>();
    for (var result = parsed.CommandResult; result is not null; result = result.Parent as System.CommandLine.Parsing.CommandResult)
    {
        command.Insert(0, result.Command.Name);
    }
    await Console.Error.WriteLineAsync(
        $"tumbler: {string.Join(" ", parsed.Errors.Select(e => e.Message.TrimEnd('.') + "."))} See '{string.Join(' ', command)} --help'.");
    return 1;
}
// The server's host handles SIGINT/SIGTERM itself and stops gracefully.
return await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
