using Tumbler.Core.Passwords;
using Tumbler.Core.Secrets;

namespace Tumbler.Core.Tests.Passwords;

public class PasswordGeneratorTests
{
    // Written out independently of the generator so a typo there cannot hide here.
    private const string Lower = "abcdefghijklmnopqrstuvwxyz";
    private const string Upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    private const string Digits = "0123456789";
    private const string Punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
    private const string DefaultAlphabet = Lower + Upper + Digits + Punctuation;

    [Fact]
    public void Punctuation_is_the_32_printable_ascii_symbols()
    {
        var printableSymbols = Enumerable.Range(0x21, 0x7E - 0x20).Select(i => (char)i).Where(c => !char.IsLetterOrDigit(c));

        Assert.Equal(Punctuation, string.Concat(printableSymbols));
        Assert.Equal(Punctuation, PasswordGenerator.Punctuation);
        Assert.Equal(32, Punctuation.Length);
        Assert.Equal(94, DefaultAlphabet.Distinct().Count());
    }

    [Fact]
    public void From_an_empty_request_gives_the_defaults()
    {
        var rules = PasswordRules.From(new GetRandomPasswordRequest());

        Assert.Equal(new PasswordRules(), rules);
        Assert.Equal(32, rules.Length);
        Assert.Equal("", rules.ExcludeCharacters);
        Assert.False(rules.ExcludeNumbers || rules.ExcludePunctuation || rules.ExcludeUppercase
            || rules.ExcludeLowercase || rules.IncludeSpace);
        Assert.True(rules.RequireEachIncludedType);
    }

    [Fact]
    public void From_takes_every_given_member()
    {
        var request = new GetRandomPasswordRequest
        {
            PasswordLength = 12,
            ExcludeCharacters = "abc",
            ExcludeNumbers = true,
            ExcludePunctuation = true,
            ExcludeUppercase = true,
            ExcludeLowercase = true,
            IncludeSpace = true,
            RequireEachIncludedType = false,
        };

        var expected = new PasswordRules
        {
            Length = 12,
            ExcludeCharacters = "abc",
            ExcludeNumbers = true,
            ExcludePunctuation = true,
            ExcludeUppercase = true,
            ExcludeLowercase = true,
            IncludeSpace = true,
            RequireEachIncludedType = false,
        };
        Assert.Equal(expected, PasswordRules.From(request));
    }

    [Fact]
    public void Default_rules_give_32_characters_of_the_94_character_alphabet_with_every_class()
    {
        for (var i = 0; i < 200; i++)
        {
            var password = PasswordGenerator.Generate(new PasswordRules());

            Assert.Equal(32, password.Length);
            Assert.All(password, c => Assert.Contains(c, DefaultAlphabet));
            AssertHasCharacterOf(password, Lower, Upper, Digits, Punctuation);
        }
    }

    [Fact]
    public void Excluded_characters_never_appear_and_the_length_stays_exact()
    {
        // LocalStack's AWS-validated test_get_random_exclude_characters_and_symbols.
        var rules = new PasswordRules { Length = 120, ExcludeCharacters = "xyzDje@?!." };

        for (var i = 0; i < 100; i++)
        {
            var password = PasswordGenerator.Generate(rules);

            Assert.Equal(120, password.Length);
            Assert.DoesNotContain(password, c => "xyzDje@?!.".Contains(c));
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(33)]
    [InlineData(4096)]
    public void Length_is_always_exact(int length)
    {
        var rules = new PasswordRules { Length = length, RequireEachIncludedType = length >= 4 };

        Assert.Equal(length, PasswordGenerator.Generate(rules).Length);
    }

    [Fact]
    public void The_shortest_password_with_every_class_required_has_one_of_each()
    {
        for (var i = 0; i < 500; i++)
        {
            var password = PasswordGenerator.Generate(new PasswordRules { Length = 4 });

            AssertHasCharacterOf(password, Lower, Upper, Digits, Punctuation);
        }
    }

    [Fact]
    public void Required_characters_land_at_random_positions()
    {
        // With length 4 every position holds each class some of the time; a missing shuffle would
        // pin the classes to fixed positions.
        var classesSeenAt = new HashSet<(int Position, string Class)>();
        for (var i = 0; i < 500; i++)
        {
            var password = PasswordGenerator.Generate(new PasswordRules { Length = 4 });
            for (var position = 0; position < 4; position++)
            {
                classesSeenAt.Add((position, ClassOf(password[position])));
            }
        }

        Assert.Equal(16, classesSeenAt.Count);
    }

    [Theory]
    [InlineData(true, false, false, false, Upper + Digits + Punctuation)]
    [InlineData(false, true, false, false, Lower + Digits + Punctuation)]
    [InlineData(false, false, true, false, Lower + Upper + Punctuation)]
    [InlineData(false, false, false, true, Lower + Upper + Digits)]
    [InlineData(true, true, true, false, Punctuation)]
    public void Excluded_classes_never_appear_and_the_others_are_required(
        bool excludeLowercase, bool excludeUppercase, bool excludeNumbers, bool excludePunctuation, string allowed)
    {
        var rules = new PasswordRules
        {
            ExcludeLowercase = excludeLowercase,
            ExcludeUppercase = excludeUppercase,
            ExcludeNumbers = excludeNumbers,
            ExcludePunctuation = excludePunctuation,
        };
        string[] includedClasses = [.. new[] { Lower, Upper, Digits, Punctuation }.Where(cls => allowed.Contains(cls))];

        for (var i = 0; i < 100; i++)
        {
            var password = PasswordGenerator.Generate(rules);

            Assert.Equal(32, password.Length);
            Assert.All(password, c => Assert.Contains(c, allowed));
            AssertHasCharacterOf(password, includedClasses);
        }
    }

    [Fact]
    public void A_class_emptied_by_ExcludeCharacters_is_not_required()
    {
        // Three characters cannot hold four classes, but the digits are all excluded.
        var rules = new PasswordRules { Length = 3, ExcludeCharacters = Digits };

        for (var i = 0; i < 100; i++)
        {
            var password = PasswordGenerator.Generate(rules);

            Assert.Equal(3, password.Length);
            Assert.DoesNotContain(password, char.IsAsciiDigit);
            AssertHasCharacterOf(password, Lower, Upper, Punctuation);
        }
    }

    [Fact]
    public void A_class_partly_emptied_by_ExcludeCharacters_is_required_from_what_is_left()
    {
        var rules = new PasswordRules { Length = 4, ExcludeCharacters = "012345678" };

        for (var i = 0; i < 100; i++)
        {
            Assert.Contains('9', PasswordGenerator.Generate(rules));
        }
    }

    [Fact]
    public void IncludeSpace_adds_the_space_to_the_alphabet()
    {
        var rules = new PasswordRules { IncludeSpace = true, RequireEachIncludedType = false };
        var seen = new HashSet<char>();

        for (var i = 0; i < 300; i++)
        {
            seen.UnionWith(PasswordGenerator.Generate(rules));
        }

        Assert.Equal((DefaultAlphabet + " ").Order(), seen.Order());
    }

    [Fact]
    public void The_space_is_not_a_required_class()
    {
        // Four characters suffice for the four classes plus IncludeSpace, and the
        // only-space alphabet needs no required class at all.
        var withSpace = new PasswordRules { Length = 4, IncludeSpace = true };
        AssertHasCharacterOf(PasswordGenerator.Generate(withSpace), Lower, Upper, Digits, Punctuation);

        var onlySpace = new PasswordRules
        {
            Length = 5,
            IncludeSpace = true,
            ExcludeLowercase = true,
            ExcludeUppercase = true,
            ExcludeNumbers = true,
            ExcludePunctuation = true,
        };
        Assert.Equal("     ", PasswordGenerator.Generate(onlySpace));
    }

    [Fact]
    public void ExcludeCharacters_also_removes_the_space()
    {
        var rules = new PasswordRules { Length = 200, IncludeSpace = true, ExcludeCharacters = " " };

        Assert.DoesNotContain(' ', PasswordGenerator.Generate(rules));
    }

    [Fact]
    public void Length_1_works_when_classes_are_not_required()
    {
        var rules = new PasswordRules { Length = 1, RequireEachIncludedType = false };

        for (var i = 0; i < 100; i++)
        {
            var password = PasswordGenerator.Generate(rules);

            Assert.Single(password);
            Assert.Contains(password[0], DefaultAlphabet);
        }
    }

    [Fact]
    public void Length_1_works_with_a_single_required_class()
    {
        var rules = new PasswordRules
        {
            Length = 1,
            ExcludeLowercase = true,
            ExcludeUppercase = true,
            ExcludePunctuation = true,
        };

        Assert.Contains(PasswordGenerator.Generate(rules)[0], Digits);
    }

    [Theory]
    [InlineData(3, "")]
    [InlineData(1, "")]
    [InlineData(2, "abc")]
    public void A_length_shorter_than_the_required_classes_is_rejected(int length, string excludeCharacters)
    {
        var rules = new PasswordRules { Length = length, ExcludeCharacters = excludeCharacters };

        var error = Assert.Throws<ServiceException>(() => PasswordGenerator.Generate(rules));

        Assert.Equal("InvalidParameterException", error.ErrorCode);
        Assert.Equal("Password length is too short based on the required types.", error.Message);
    }

    [Fact]
    public void Excluding_every_class_is_rejected()
    {
        var rules = new PasswordRules
        {
            ExcludeLowercase = true,
            ExcludeUppercase = true,
            ExcludeNumbers = true,
            ExcludePunctuation = true,
        };

        AssertNothingToChooseFrom(rules);
        AssertNothingToChooseFrom(rules with { RequireEachIncludedType = false });
        AssertNothingToChooseFrom(rules with { IncludeSpace = true, ExcludeCharacters = " " });
    }

    [Fact]
    public void Excluding_every_character_is_rejected()
    {
        AssertNothingToChooseFrom(new PasswordRules { ExcludeCharacters = DefaultAlphabet });
        AssertNothingToChooseFrom(new PasswordRules
        {
            ExcludeCharacters = Lower + Upper,
            ExcludeNumbers = true,
            ExcludePunctuation = true,
            RequireEachIncludedType = false,
        });
    }

    [Fact]
    public void A_non_positive_length_is_a_programming_error()
    {
        // Request validation rejects PasswordLength < 1 before the generator runs.
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            PasswordGenerator.Generate(new PasswordRules { Length = 0, RequireEachIncludedType = false }));
    }

    [Fact]
    public void Passwords_differ()
    {
        var passwords = Enumerable.Range(0, 100).Select(_ => PasswordGenerator.Generate(new PasswordRules()));

        Assert.Equal(100, passwords.Distinct().Count());
    }

    [Fact]
    public void Every_character_of_the_alphabet_appears_with_a_plausible_frequency()
    {
        // 1000 × 32 draws: each of the 94 characters is expected ~340 times (σ ≈ 18), so the
        // bounds below are more than 9σ away and a biased or truncated alphabet still fails them.
        const int Passwords = 1000;
        var rules = new PasswordRules { RequireEachIncludedType = false };
        var counts = new Dictionary<char, int>();
        for (var i = 0; i < Passwords; i++)
        {
            foreach (var c in PasswordGenerator.Generate(rules))
            {
                counts[c] = counts.GetValueOrDefault(c) + 1;
            }
        }

        var expected = Passwords * 32.0 / DefaultAlphabet.Length;
        Assert.Equal(DefaultAlphabet.Order(), counts.Keys.Order());
        Assert.All(counts.Values, count => Assert.InRange(count, expected / 2, expected * 2));
    }

    private static void AssertNothingToChooseFrom(PasswordRules rules)
    {
        var error = Assert.Throws<ServiceException>(() => PasswordGenerator.Generate(rules));

        Assert.Equal("InvalidParameterException", error.ErrorCode);
        Assert.Equal("The password cannot be generated: every character class is excluded.", error.Message);
    }

    private static void AssertHasCharacterOf(string password, params string[] classes)
    {
        foreach (var cls in classes)
        {
            Assert.True(password.Any(cls.Contains), $"A password lacks a character of {cls}.");
        }
    }

    private static string ClassOf(char c) =>
        new[] { Lower, Upper, Digits, Punctuation }.Single(cls => cls.Contains(c));
}
