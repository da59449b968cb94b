using Tumbler.Core.Secrets;

namespace Tumbler.Core.Tests.Secrets;

public class SecretFilterTests
{
    // Stands in for the random suffix the AWS-recorded tests append to their names.
    private const string Id = "3fa85f";

    // LocalStack test_list_secrets_filtering [AWS-SNAP].
    private static readonly FilterableSecret[] SlashSecrets =
    [
        Secret("testing1/one-12345", "a secret"),
        Secret("/testing2/two-12345", "an secret"),
        Secret("testing3/three-12345", "asecret"),
        Secret("/testing4/four-12345", "thesecret"),
    ];

    // moto test_with_filter_with_value_with_multiple_words / _negation [AWS-VERIFIED].
    private static readonly FilterableSecret[] WordSecrets =
    [
        Secret("foo", "one two"),
        Secret("bar", "one and two"),
        Secret("baz", "one"),
        Secret("qux", "two"),
        Secret("none", "unrelated"),
    ];

    // moto test_with_all_filter [AWS-VERIFIED].
    private static readonly FilterableSecret[] AllSecrets =
    [
        Secret($"SecretOne{Id}"),
        Secret($"SecretTwo{Id}", "DescTwo"),
        Secret($"Thirdsecret{Id}"),
        Secret($"SecretFTag{Id}", tags: [new Tag { Key = "1", Value = "foo" }]),
        Secret($"SecretFValue{Id}", tags: [new Tag { Key = "foo", Value = "v" }]),
        Secret($"none{Id}"),
    ];

    // moto test_with_all_filter_special_characters [AWS-VERIFIED].
    private static readonly string[] SpecialCharacterNames =
    [
        $"prod/AppBeta/{Id}",
        $"prod_AppBeta_{Id}",
        $"prod+AppBeta+{Id}",
        $"prod=AppBeta={Id}",
        $"prod.AppBeta.{Id}",
        $"prod@AppBeta@{Id}",
        $"prod-AppBeta-{Id}",
    ];

    private static readonly FilterableSecret[] SpecialCharacterSecrets =
    [
        .. SpecialCharacterNames.Select(name => Secret(name)),
        Secret($"uat/COMPANY/{Id}"),
        Secret($"uat/COMPANYthings/{Id}"),
    ];

    [Fact]
    public void Keys_are_the_model_enum()
    {
        Assert.Equal(
            ["description", "name", "tag-key", "tag-value", "primary-region", "owning-service", "all"],
            SecretFilter.Keys);
    }

    [Fact]
    public void No_filters_match_everything()
    {
        Assert.True(SecretFilter.Matches([], Secret("anything")));
    }

    // --- name --------------------------------------------------------------------------------

    [Fact]
    public void Name_is_a_prefix_of_the_whole_name()
    {
        Assert.Equal(["/testing2/two-12345", "/testing4/four-12345"], Names(SlashSecrets, F("name", "/")));
        Assert.Equal(["testing1/one-12345", "testing3/three-12345"], Names(SlashSecrets, F("name", "!/")));
        Assert.Empty(Names(SlashSecrets, F("name", "testing1 one")));
        Assert.Equal(["testing1/one-12345"], Names(SlashSecrets, F("name", "testing1/one")));
    }

    [Fact]
    public void Name_is_case_sensitive_and_not_word_based()
    {
        FilterableSecret[] secrets = [Secret("foo"), Secret("Foo"), Secret("bar-foo")];

        Assert.Equal(["foo"], Names(secrets, F("name", "foo")));
        Assert.Equal(["Foo"], Names(secrets, F("name", "F")));
    }

    [Fact]
    public void Values_of_one_filter_are_ored()
    {
        FilterableSecret[] secrets = [Secret("foo"), Secret("bar"), Secret("baz")];

        Assert.Equal(["foo", "bar"], Names(secrets, F("name", "foo", "bar")));
    }

    // --- description -------------------------------------------------------------------------

    [Fact]
    public void Description_words_are_case_insensitive_prefixes_of_description_words()
    {
        Assert.Equal(["testing1/one-12345", "/testing2/two-12345"], Names(SlashSecrets, F("description", "a secret")));
        Assert.Equal(
            ["testing1/one-12345", "/testing2/two-12345", "testing3/three-12345"],
            Names(SlashSecrets, F("description", "a")));
        Assert.Equal(["/testing4/four-12345"], Names(SlashSecrets, F("description", "!a")));
        Assert.Equal(SlashSecrets.Select(s => s.Name), Names(SlashSecrets, F("description", "!c")));
        Assert.Equal(
            ["testing1/one-12345", "/testing2/two-12345"],
            Names(SlashSecrets, F("description", "A SECRET")));
    }

    [Fact]
    public void Every_description_word_must_match()
    {
        Assert.Equal(["foo", "bar"], Names(WordSecrets, F("description", "one two")));
        Assert.Equal(["foo", "bar"], Names(WordSecrets, F("description", "o t")));
        Assert.Equal(["foo", "bar", "qux"], Names(WordSecrets, F("description", "t")));
    }

    [Fact]
    public void Description_is_not_split_at_case_boundaries_or_symbols()
    {
        FilterableSecret[] secrets = [Secret("camel", "DescTwo"), Secret("dashed", "prod-db")];

        Assert.Empty(Names(secrets, F("description", "two")));
        Assert.Empty(Names(secrets, F("description", "db")));
        Assert.Equal(["dashed"], Names(secrets, F("description", "prod-")));
    }

    [Fact]
    public void Repeated_keys_are_anded()
    {
        FilterableSecret[] secrets =
            [Secret("foo", "one two"), Secret("bar", "one"), Secret("baz", "two"), Secret("qux", "unrelated")];

        Assert.Equal(["foo"], Names(secrets, F("description", "one"), F("description", "two")));
    }

    [Fact]
    public void A_description_filter_and_a_name_filter_that_matches_nothing_give_nothing()
    {
        Assert.Empty(Names(SlashSecrets, F("description", "a"), F("name", "secret")));
        Assert.Empty(Names(SlashSecrets, F("description", "a"), F("name", "an")));
    }

    [Fact]
    public void A_missing_description_matches_only_negated_values()
    {
        var secret = Secret("plain");

        Assert.False(SecretFilter.Matches([F("description", "a")], secret));
        Assert.True(SecretFilter.Matches([F("description", "!a")], secret));
    }

    // --- negation ----------------------------------------------------------------------------

    [Fact]
    public void A_negated_value_matches_exactly_when_the_plain_value_does_not()
    {
        Assert.Equal(["qux", "none"], Names(WordSecrets, F("description", "!o")));
    }

    [Fact]
    public void Negated_and_plain_values_of_one_filter_are_ored()
    {
        // "one OR NOT two": qux ("two") is the only description that has no "one" but has "two".
        Assert.Equal(["foo", "bar", "baz", "none"], Names(WordSecrets, F("description", "one", "!two")));

        // "NOT one OR NOT two" = NOT (one AND two).
        Assert.Equal(["baz", "qux", "none"], Names(WordSecrets, F("description", "!one", "!two")));
    }

    [Fact]
    public void Only_the_first_exclamation_mark_negates()
    {
        FilterableSecret[] secrets = [Secret("!important"), Secret("plain")];

        Assert.Equal(["plain"], Names(secrets, F("name", "!!")));
        Assert.Equal(["!important", "plain"], Names(secrets, F("name", "")));
        Assert.Empty(Names(secrets, F("name", "!")));
    }

    // --- tags, region, owning service -----------------------------------------------------------

    [Fact]
    public void Tag_key_and_tag_value_are_case_sensitive_prefixes_of_any_tag()
    {
        FilterableSecret[] secrets =
        [
            Secret("foo", tags: [new Tag { Key = "right", Value = "right" }]),
            Secret("bar", tags: [new Tag { Key = "right", Value = "wrong" }]),
            Secret("baz", tags: [new Tag { Key = "wrong", Value = "right" }]),
            Secret("qux", tags: [new Tag { Key = "other", Value = "x" }, new Tag { Key = "wrong", Value = "wrong" }]),
            Secret("untagged"),
        ];

        Assert.Equal(["foo", "bar"], Names(secrets, F("tag-key", "rig")));
        Assert.Equal(["baz", "qux"], Names(secrets, F("tag-key", "wrong")));
        Assert.Empty(Names(secrets, F("tag-key", "Right")));
        Assert.Equal(["foo", "baz"], Names(secrets, F("tag-value", "right")));
        Assert.Equal(["foo"], Names(secrets, F("tag-key", "right"), F("tag-value", "right")));
    }

    [Fact]
    public void A_negated_tag_filter_means_no_tag_matches()
    {
        FilterableSecret[] secrets =
        [
            Secret("env-and-team", tags: [new Tag { Key = "env", Value = "prod" }, new Tag { Key = "team", Value = "a" }]),
            Secret("team", tags: [new Tag { Key = "team", Value = "a" }]),
            Secret("untagged"),
        ];

        Assert.Equal(["team", "untagged"], Names(secrets, F("tag-key", "!env")));
        Assert.Equal(["team", "untagged"], Names(secrets, F("tag-value", "!prod")));
    }

    [Fact]
    public void Primary_region_and_owning_service_are_case_sensitive_prefixes()
    {
        FilterableSecret[] secrets =
        [
            Secret("replicated", primaryRegion: "eu-west-1"),
            Secret("managed", owningService: "rds"),
            Secret("plain"),
        ];

        Assert.Equal(["replicated"], Names(secrets, F("primary-region", "eu-")));
        Assert.Empty(Names(secrets, F("primary-region", "EU")));
        Assert.Equal(["managed", "plain"], Names(secrets, F("primary-region", "!eu")));
        Assert.Equal(["managed"], Names(secrets, F("owning-service", "rd")));
        Assert.Empty(Names(secrets, F("owning-service", "n/a")));
    }

    // --- all -----------------------------------------------------------------------------------

    [Fact]
    public void All_matches_words_of_names_descriptions_and_tags()
    {
        Assert.Equal([$"SecretOne{Id}"], Names(AllSecrets, F("all", "SecretOne")));
        Assert.Equal([$"SecretFTag{Id}", $"SecretFValue{Id}"], Names(AllSecrets, F("all", "foo")));

        string[] secretWords = [$"SecretOne{Id}", $"SecretTwo{Id}", $"SecretFTag{Id}", $"SecretFValue{Id}"];
        Assert.Equal(secretWords, Names(AllSecrets, F("all", "Secret")));
        Assert.Equal(secretWords, Names(AllSecrets, F("all", "secret")));
        Assert.Equal(secretWords, Names(AllSecrets, F("all", "sec")));

        Assert.Empty(Names(AllSecrets, F("all", "ret")));
        Assert.Empty(Names(AllSecrets, F("all", "SomeSecret")));
        Assert.Equal([$"SecretTwo{Id}"], Names(AllSecrets, F("all", "d")));
        Assert.Equal([$"SecretTwo{Id}"], Names(AllSecrets, F("all", "d t")));
        Assert.Equal(
            [$"SecretTwo{Id}", $"Thirdsecret{Id}", $"SecretFTag{Id}"],
            Names(AllSecrets, F("all", "t")));
    }

    [Fact]
    public void All_splits_at_special_characters()
    {
        Assert.Equal(SpecialCharacterNames, Names(SpecialCharacterSecrets, F("all", "AppBeta")));
        Assert.Equal(SpecialCharacterNames, Names(SpecialCharacterSecrets, F("all", "Beta")));
        Assert.Equal(SpecialCharacterNames, Names(SpecialCharacterSecrets, F("all", "AppBeta", "prod")));
        Assert.Empty(Names(SpecialCharacterSecrets, F("all", "+")));
        Assert.Equal(SpecialCharacterSecrets.Select(s => s.Name), Names(SpecialCharacterSecrets, F("all", Id)));
    }

    [Fact]
    public void All_splits_an_upper_case_run_before_its_last_capital()
    {
        Assert.Equal([$"uat/COMPANY/{Id}"], Names(SpecialCharacterSecrets, F("all", "company")));
        Assert.Empty(Names(SpecialCharacterSecrets, F("all", "things")));
        Assert.Equal([$"uat/COMPANYthings/{Id}"], Names(SpecialCharacterSecrets, F("all", "Ythings")));
        Assert.Empty(Names(SpecialCharacterSecrets, F("all", "N")));
        Assert.Empty(Names(SpecialCharacterSecrets, F("all", "pany")));
    }

    [Fact]
    public void All_pools_the_words_of_every_attribute()
    {
        // "desc" comes from the description, "secret" and "two" from the name.
        Assert.Equal([$"SecretTwo{Id}"], Names(AllSecrets, F("all", "desc secret")));
        Assert.Equal([$"SecretFValue{Id}"], Names(AllSecrets, F("all", "foo v")));
    }

    [Fact]
    public void All_can_be_negated()
    {
        Assert.Equal(
            [$"Thirdsecret{Id}", $"none{Id}"],
            Names(AllSecrets, F("all", "!secret")));
    }

    [Theory]
    [InlineData("SecretOne3fa85f", "Secret One3fa85f")]
    [InlineData("DescTwo", "Desc Two")]
    [InlineData("SecretFTag", "Secret F Tag")]
    [InlineData("COMPANYthings", "COMPAN Ythings")]
    [InlineData("uat/COMPANY/x", "uat COMPANY x")]
    [InlineData("a/b_c+d=e.f@g-h i", "a b c d e f g h i")]
    [InlineData("db1Prod", "db1Prod")]
    [InlineData("HTTPServer", "HTTP Server")]
    [InlineData("--+", "")]
    [InlineData("", "")]
    public void SplitWords_splits_like_aws(string text, string words)
    {
        Assert.Equal(words.Split(' ', StringSplitOptions.RemoveEmptyEntries), SecretFilter.SplitWords(text));
    }

    // --- invalid filters -----------------------------------------------------------------------

    [Theory]
    [InlineData(null)]
    [InlineData("invalid")]
    [InlineData("Name")]
    public void An_unknown_key_is_rejected(string? key)
    {
        var error = Assert.Throws<ServiceException>(() =>
            SecretFilter.Matches([new Filter { Key = key, Values = ["foo"] }], Secret("foo")));

        Assert.Equal("InvalidParameterException", error.ErrorCode);
        Assert.Equal("Invalid filter key", error.Message);
    }

    [Fact]
    public void A_filter_without_values_is_rejected()
    {
        foreach (var values in new[] { null, Array.Empty<string>() })
        {
            var error = Assert.Throws<ServiceException>(() =>
                SecretFilter.Matches([new Filter { Key = "description", Values = values }], Secret("foo")));

            Assert.Equal("InvalidParameterException", error.ErrorCode);
            Assert.Equal("Invalid filter values for key: description", error.Message);
        }
    }

    private static FilterableSecret Secret(
        string name, string? description = null, Tag[]? tags = null, string? primaryRegion = null, string? owningService = null) =>
        new(name, description, tags ?? [], primaryRegion, owningService);

    private static Filter F(string key, params string[] values) => new() { Key = key, Values = values };

    private static string[] Names(IEnumerable<FilterableSecret> secrets, params Filter[] filters) =>
        [.. secrets.Where(secret => SecretFilter.Matches(filters, secret)).Select(secret => secret.Name)];
}
