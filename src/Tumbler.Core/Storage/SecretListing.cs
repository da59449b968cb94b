namespace Tumbler.Core.Storage;

/// <summary>The orders ListSecrets offers (its SortBy values). Ties are broken by the store's row key, in the same direction.</summary>
public enum SecretSortKey
{
    CreatedDate,
    LastAccessedDate,
    LastChangedDate,
    Name,
}

/// <summary>
/// A point in a listing order: the sort value of one secret and its row key (<see cref="SecretEntity.Key"/>).
/// For <see cref="SecretSortKey.Name"/> the value is <see cref="Name"/>; for the dates it is <see cref="Ticks"/>
/// (UTC ticks, a never-accessed secret counting as <see cref="DateTimeOffset.MinValue"/>, so it comes first ascending).
/// </summary>
public readonly record struct SecretListPosition(SecretSortKey SortBy, string? Name, long Ticks, long Key)
{
    public static SecretListPosition Of(SecretEntity secret, SecretSortKey sortBy) => sortBy switch
    {
        SecretSortKey.Name => new(sortBy, secret.Name, 0, secret.Key),
        SecretSortKey.LastAccessedDate => new(sortBy, null, (secret.LastAccessedDate ?? DateTimeOffset.MinValue).UtcTicks, secret.Key),
        SecretSortKey.LastChangedDate => new(sortBy, null, secret.LastChangedDate.UtcTicks, secret.Key),
        _ => new(sortBy, null, secret.CreatedDate.UtcTicks, secret.Key),
    };
}
