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
// The server's host handles SIGINT/SIGTERM itself and stops gracefully.
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
