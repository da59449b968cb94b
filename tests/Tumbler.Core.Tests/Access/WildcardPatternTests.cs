using Tumbler.Core.Access;

namespace Tumbler.Core.Tests.Access;

public sealed class WildcardPatternTests
{
    [Theory]
    [InlineData("*", "", true)]
    [InlineData("*", "anything:at/all", true)]
    [InlineData("", "", true)]
    [InlineData("", "a", false)]
    [InlineData("abc", "abc", true)]
    [InlineData("abc", "abcd", false)]
    [InlineData("ab*", "ab", true)]
    [InlineData("ab*", "a", false)]
    [InlineData("*c", "abc", true)]
    [InlineData("a*c", "ac", true)]
    [InlineData("a*c", "abcbcb", false)]
    [InlineData("a*b*c", "axxbyyc", true)]
    [InlineData("a*b*c", "axxcyyb", false)]
    [InlineData("a?c", "abc", true)]
    [InlineData("a?c", "ac", false)]
    [InlineData("???", "abc", true)]
    [InlineData("*?", "", false)]
    [InlineData("**a**", "xxaxx", true)]
    [InlineData("secret:prod/*-??????", "secret:prod/a/b:c-AbCdEf", true)]
    public void Matches_like_iam(string pattern, string text, bool expected) =>
        Assert.Equal(expected, new WildcardPattern(pattern, ignoreCase: false).IsMatch(text));

    [Fact]
    public void Case_is_ignored_only_on_request()
    {
        Assert.True(new WildcardPattern("SecretsManager:Get*", ignoreCase: true).IsMatch("secretsmanager:GETSECRETVALUE"));
        Assert.False(new WildcardPattern("SecretsManager:Get*", ignoreCase: false).IsMatch("secretsmanager:GetSecretValue"));
        Assert.True(new WildcardPattern("a?C*", ignoreCase: true).IsMatch("AbcDEF"));
    }

    [Fact]
    public void Literal_positions_are_not_wildcards()
    {
        var pattern = new WildcardPattern("a*b?", ignoreCase: false, [false, true, false, false]);
        Assert.True(pattern.IsMatch("a*bx"));
        Assert.False(pattern.IsMatch("axbx"));
    }

    [Fact]
    public void A_pathological_pattern_stays_fast()
    {
        var pattern = new WildcardPattern(string.Concat(Enumerable.Repeat("a*", 50)) + "b", ignoreCase: false);
        Assert.False(pattern.IsMatch(new string('a', 5000)));
    }
}
