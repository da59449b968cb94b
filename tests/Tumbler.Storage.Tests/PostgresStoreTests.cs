using Npgsql;
using Tumbler.Storage.Postgres;

namespace Tumbler.Storage.Tests;

/// <summary>What only the PostgreSQL store has: how an operator names it, and its place in a shared database.</summary>
public sealed class PostgresStoreTests
{
    [Fact]
    public void A_url_becomes_a_connection_string_with_libpq_names_understood()
    {
        var builder = new NpgsqlConnectionStringBuilder(PostgresSecretStore.ConnectionStringFrom(
            "postgres://app%40corp:p%3Ass@db.internal:6432/vault?sslmode=verify-full&sslrootcert=/etc/ca.pem&Maximum%20Pool%20Size=7"));
        Assert.Equal(("db.internal", 6432, "vault", "app@corp", "p:ss"), (builder.Host, builder.Port, builder.Database, builder.Username, builder.Password));
        Assert.Equal(SslMode.VerifyFull, builder.SslMode);
        Assert.Equal("/etc/ca.pem", builder.RootCertificate);
        Assert.Equal(7, builder.MaxPoolSize);
        Assert.Equal("postgres", new NpgsqlConnectionStringBuilder(PostgresSecretStore.ConnectionStringFrom("postgresql://h")).Database);
    }

    [Theory]
    [InlineData("postgres://u:hunter2@h/db?nonsense=1")]
    [InlineData("Host=h;Password=hunter2;Bogus Keyword=1")]
    [InlineData("postgres://")]
    public void A_bad_store_is_refused_without_repeating_its_password(string store)
    {
        var error = Assert.Throws<FormatException>(() => PostgresSecretStore.ConnectionStringFrom(store));
        Assert.DoesNotContain("hunter2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Masking_hides_the_password_and_the_client_key_passphrase()
    {
        var masked = PostgresSecretStore.Mask("Host=h;Username=u;Password=hunter2;SSL Password=swordfish");
        Assert.DoesNotContain("hunter2", masked, StringComparison.Ordinal);
        Assert.DoesNotContain("swordfish", masked, StringComparison.Ordinal);
        Assert.Contains("Host=h", masked, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", PostgresSecretStore.Mask("postgres://u:hunter2@h/db"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tables_of_the_same_name_elsewhere_in_the_database_are_left_alone()
    {
        await using var backend = await PostgresBackend.CreateAsync();
        await backend.AdminAsync("CREATE TABLE public.secrets (id int); CREATE TABLE public.settings (name text)");
        await using var store = backend.Open();
        await store.InitializeAsync(default);
        await store.SetSettingAsync("k", "v", default);
        Assert.Equal("v", await store.GetSettingAsync("k", default));
        Assert.Equal(0L, await backend.AdminScalarAsync("SELECT COUNT(*) FROM public.settings"));
        Assert.Equal(1L, await backend.AdminScalarAsync($"SELECT COUNT(*) FROM {PostgresSecretStore.Schema}.settings"));
    }
}
