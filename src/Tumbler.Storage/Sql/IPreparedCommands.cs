using System.Data.Common;

namespace Tumbler.Storage.Sql;

/// <summary>
/// A connection that keeps one command per SQL text, so each statement is compiled once for the connection's life
/// rather than on every call. Disposing a command it handed out ends that use only.
/// </summary>
public interface IPreparedCommands
{
    /// <summary>The kept command for the text, or null when this text is not kept (the caller makes a new one).</summary>
    DbCommand? Rent(string sql);
}
