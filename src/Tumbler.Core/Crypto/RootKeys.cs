using System.Collections.Concurrent;

namespace Tumbler.Core.Crypto;

/// <summary>
/// The root keys a server can wrap new key material under: the one it started with, and any other found in its
/// candidate files (DATA_DIR/root.key and DATA_DIR/root.key.next). A root key rotation run beside a running server
/// writes the next key to root.key.next before it prepares, so the server finds it when the store asks for it
/// (new material wrapped under both keys while a rotation is prepared, under the new key after the switch).
/// A key is identified by the store's check value it opens; files are read only when no known key opens it.
/// </summary>
public sealed class RootKeys
{
    private readonly ConcurrentBag<byte[]> _known = [];
    private readonly IReadOnlyList<string> _candidateFiles;

    public RootKeys(byte[] startKey, IReadOnlyList<string> candidateFiles)
    {
        _known.Add(startKey);
        StartKey = startKey;
        _candidateFiles = candidateFiles;
    }

    /// <summary>The key the server was started with.</summary>
    public byte[] StartKey { get; }

    /// <summary>The root key whose check value (see <see cref="KeyRing.IsRootKeyFor"/>) is <paramref name="check"/>; null when none known or found.</summary>
    public byte[]? Find(string check)
    {
        foreach (var key in _known)
        {
            if (KeyRing.IsRootKeyFor(check, key))
            {
                return key;
            }
        }
        // Two passes: rotate-root renames root.key.next over root.key once, so a pass that read root.key just before the
        // rename and root.key.next just after finds the key in root.key on the second.
        foreach (var path in _candidateFiles.Concat(_candidateFiles))
        {
            byte[] key;
            try
            {
                key = RootKeyFile.Read(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                continue; // absent, mid-rename or not a key: not the one asked for
            }
            if (KeyRing.IsRootKeyFor(check, key))
            {
                _known.Add(key);
                return key;
            }
        }
        return null;
    }
}
