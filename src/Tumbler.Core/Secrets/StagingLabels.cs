using Tumbler.Core.Storage;

namespace Tumbler.Core.Secrets;

/// <summary>
/// The staging-label rules of spec §3.3, applied to a secret's versions in memory. A label sits on
/// at most one version; whenever AWSCURRENT moves, the version losing it takes AWSPREVIOUS (from
/// whichever version had it) and drops AWSPENDING, so a finished rotation leaves no pending label
/// on an old version.
/// </summary>
public static class StagingLabels
{
    public const string Current = "AWSCURRENT";
    public const string Previous = "AWSPREVIOUS";
    public const string Pending = "AWSPENDING";
    /// <summary>AWS's quota: staging labels attached across all versions of a secret.</summary>
    public const int MaxLabelsPerSecret = 20;

    public static VersionEntity? Holder(SecretEntity secret, string label) =>
        secret.Versions.Find(v => v.Labels.Contains(label));

    /// <summary>
    /// Attaches labels to a new (or newly valued) version: each listed label leaves the version that
    /// held it. With no list the version becomes AWSCURRENT; the first version of a secret always does.
    /// </summary>
    public static void AttachToNewVersion(SecretEntity secret, VersionEntity version, IReadOnlyList<string>? stages)
    {
        var labels = stages?.Distinct(StringComparer.Ordinal).ToList() ?? [Current];
        if (!labels.Contains(Current) && Holder(secret, Current) is null)
        {
            labels.Insert(0, Current);
        }
        foreach (var label in labels)
        {
            Move(secret, label, version);
        }
    }

    /// <summary>
    /// Moves <paramref name="label"/> to <paramref name="destination"/> (or only detaches it when null). A custom label
    /// new to the secret is refused past the quota; moving a label the secret has, and the labels AWS manages
    /// (AWSCURRENT, AWSPENDING, AWSPREVIOUS), never are, so a new value always lands and a rotation can start and finish.
    /// </summary>
    public static void Move(SecretEntity secret, string label, VersionEntity? destination)
    {
        var holder = Holder(secret, label);
        if (holder == destination)
        {
            return;
        }
        if (holder is null && destination is not null && label is not (Current or Pending or Previous)
            && secret.Versions.Sum(v => v.Labels.Count) is var count && count >= MaxLabelsPerSecret)
        {
            throw new ServiceException(ErrorCodes.LimitExceeded,
                $"A secret can have at most {MaxLabelsPerSecret} staging labels across its versions; {secret.Name} has {count}. Remove one first.");
        }
        holder?.Labels.Remove(label);
        destination?.Labels.Add(label);
        if (label == Current && holder is not null)
        {
            Holder(secret, Previous)?.Labels.Remove(Previous);
            holder.Labels.Remove(Pending);
            holder.Labels.Add(Previous);
        }
    }

    /// <summary>A rotation is in progress when AWSPENDING is on a version other than the AWSCURRENT one.</summary>
    public static bool RotationInProgress(SecretEntity secret)
    {
        var pending = Holder(secret, Pending);
        return pending is not null && !pending.Labels.Contains(Current);
    }
}
