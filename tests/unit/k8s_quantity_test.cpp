// resource.Quantity semantics, with the cases of apimachinery's quantity_test.go.
#include <gtest/gtest.h>

#include <string>

#include "podgauge/k8s/error.h"
#include "podgauge/k8s/quantity.h"

namespace {

using podgauge::k8s::Quantity;
using podgauge::k8s::QuantityError;
using podgauge::k8s::QuantityFormat;
using F = QuantityFormat;

Quantity q(std::string_view s) { return Quantity::parse(s); }
// value * 10^exponent, like the upstream test's decQuantity.
Quantity dec(std::int64_t value, int exponent, F format) { return Quantity::from_scaled(value, exponent, format); }

struct ParseCase {
  const char* input;
  Quantity expect;
};

TEST(K8sQuantity, parses_the_apimachinery_table_exactly) {
  const ParseCase table[] = {
      {"0", dec(0, 0, F::DecimalSI)}, {"0n", dec(0, 0, F::DecimalSI)}, {"0u", dec(0, 0, F::DecimalSI)},
      {"0m", dec(0, 0, F::DecimalSI)}, {"0Ki", dec(0, 0, F::BinarySI)}, {"0k", dec(0, 0, F::DecimalSI)},
      {"0Mi", dec(0, 0, F::BinarySI)}, {"0M", dec(0, 0, F::DecimalSI)}, {"0Gi", dec(0, 0, F::BinarySI)},
      {"0G", dec(0, 0, F::DecimalSI)}, {"0Ti", dec(0, 0, F::BinarySI)}, {"0T", dec(0, 0, F::DecimalSI)},
      {"1", dec(1, 0, F::DecimalSI)},
      {"1Ki", dec(1024, 0, F::BinarySI)}, {"8Ki", dec(8 * 1024, 0, F::BinarySI)},
      {"7Mi", dec(7LL << 20, 0, F::BinarySI)}, {"6Gi", dec(6LL << 30, 0, F::BinarySI)},
      {"5Ti", dec(5LL << 40, 0, F::BinarySI)}, {"4Pi", dec(4LL << 50, 0, F::BinarySI)},
      {"3Ei", dec(3LL << 60, 0, F::BinarySI)}, {"10Ti", dec(10LL << 40, 0, F::BinarySI)},
      {"100Ti", dec(100LL << 40, 0, F::BinarySI)},
      {"5n", dec(5, -9, F::DecimalSI)}, {"4u", dec(4, -6, F::DecimalSI)}, {"3m", dec(3, -3, F::DecimalSI)},
      {"9", dec(9, 0, F::DecimalSI)}, {"8k", dec(8, 3, F::DecimalSI)}, {"50k", dec(5, 4, F::DecimalSI)},
      {"7M", dec(7, 6, F::DecimalSI)}, {"6G", dec(6, 9, F::DecimalSI)}, {"5T", dec(5, 12, F::DecimalSI)},
      {"40T", dec(4, 13, F::DecimalSI)}, {"300T", dec(3, 14, F::DecimalSI)}, {"2P", dec(2, 15, F::DecimalSI)},
      {"1E", dec(1, 18, F::DecimalSI)},
      {"1E-3", dec(1, -3, F::DecimalExponent)}, {"1e3", dec(1, 3, F::DecimalExponent)},
      {"1E6", dec(1, 6, F::DecimalExponent)}, {"1e9", dec(1, 9, F::DecimalExponent)},
      {"1E12", dec(1, 12, F::DecimalExponent)}, {"1e15", dec(1, 15, F::DecimalExponent)},
      {"1E18", dec(1, 18, F::DecimalExponent)}, {"1e14", dec(1, 14, F::DecimalExponent)},
      {"1e13", dec(1, 13, F::DecimalExponent)}, {"100.035k", dec(100035, 0, F::DecimalSI)},
      {"0.001", dec(1, -3, F::DecimalSI)}, {"0.0005k", dec(5, -1, F::DecimalSI)},
      {"0.005", dec(5, -3, F::DecimalSI)}, {"0.05", dec(5, -2, F::DecimalSI)}, {"0.5", dec(5, -1, F::DecimalSI)},
      {"0.00050k", dec(5, -1, F::DecimalSI)}, {"0.00500", dec(5, -3, F::DecimalSI)},
      {"0.05000", dec(5, -2, F::DecimalSI)}, {"0.50000", dec(5, -1, F::DecimalSI)},
      {"0.5e0", dec(5, -1, F::DecimalExponent)}, {"0.5e-1", dec(5, -2, F::DecimalExponent)},
      {"0.5e-2", dec(5, -3, F::DecimalExponent)}, {"10.035M", dec(10035, 3, F::DecimalSI)},
      {"1.2e3", dec(12, 2, F::DecimalExponent)}, {"1.3E+6", dec(13, 5, F::DecimalExponent)},
      {"1.40e9", dec(14, 8, F::DecimalExponent)}, {"1.53E12", dec(153, 10, F::DecimalExponent)},
      {"1.6e15", dec(16, 14, F::DecimalExponent)}, {"1.7E18", dec(17, 17, F::DecimalExponent)},
      {"9.01", dec(901, -2, F::DecimalSI)}, {"8.1k", dec(81, 2, F::DecimalSI)},
      {"7.123456M", dec(7123456, 0, F::DecimalSI)}, {"6.987654321G", dec(6987654321, 0, F::DecimalSI)},
      {"5.444T", dec(5444, 9, F::DecimalSI)}, {"40.1T", dec(401, 11, F::DecimalSI)},
      {"300.2T", dec(3002, 11, F::DecimalSI)}, {"2.5P", dec(25, 14, F::DecimalSI)},
      {"1.01E", dec(101, 16, F::DecimalSI)},
      // Things that saturate/round
      {"3.001n", dec(4, -9, F::DecimalSI)}, {"1.1E-9", dec(2, -9, F::DecimalExponent)},
      {"0.0000000001", dec(1, -9, F::DecimalSI)}, {"0.0000000005", dec(1, -9, F::DecimalSI)},
      {"0.00000000050", dec(1, -9, F::DecimalSI)}, {"0.5e-9", dec(1, -9, F::DecimalExponent)},
      {"0.9n", dec(1, -9, F::DecimalSI)}, {"0.00000012345", dec(124, -9, F::DecimalSI)},
      {"0.00000012354", dec(124, -9, F::DecimalSI)},
      {"9Ei", dec(INT64_MAX, 0, F::BinarySI)}, {"9223372036854775807Ki", dec(INT64_MAX, 0, F::BinarySI)},
      {"12E", dec(12, 18, F::DecimalSI)},
      // Fractional binary
      {"100.035Ki", dec(10243584, -2, F::BinarySI)}, {"0.5Mi", dec(512 * 1024, 0, F::BinarySI)},
      {"0.05Gi", dec(536870912, -1, F::BinarySI)}, {"0.025Ti", dec(274877906944, -1, F::BinarySI)},
      // Things written by trolls
      {"0.000000000001Ki", dec(2, -9, F::DecimalSI)}, {".001", dec(1, -3, F::DecimalSI)},
      {".0001k", dec(100, -3, F::DecimalSI)}, {"1.", dec(1, 0, F::DecimalSI)}, {"1.G", dec(1, 9, F::DecimalSI)},
  };
  for (const auto& c : table) {
    SCOPED_TRACE(c.input);
    const Quantity got = q(c.input);
    EXPECT_EQ(got.compare(c.expect), 0) << got.to_string() << " vs " << c.expect.to_string();
    EXPECT_EQ(got.format(), c.expect.format());
    // The negative and the explicitly positive spellings parse to the mirrored/same value.
    const Quantity negative = q(std::string("-") + c.input);
    EXPECT_EQ(negative.compare(-c.expect), 0) << negative.to_string();
    EXPECT_EQ(negative.format(), c.expect.format());
    EXPECT_EQ(q(std::string("+") + c.input).compare(c.expect), 0);
  }
}

TEST(K8sQuantity, rejects_what_apimachinery_rejects_naming_the_input) {
  for (const char* bad : {"", "1.1.M", "1+1.0M", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "-3.01i", "-3.01e-",
                          " 1", "1 ", "1Kb", "1K", "1e", "1ee3", "1e3e", "1ki", "1KiB", "--1", "1e1.5", "0x10",
                          "1e99999999999999999999", "Non-Numeric"}) {
    SCOPED_TRACE(bad);
    try {
      Quantity::parse(bad);
      ADD_FAILURE() << "parsed unexpectedly";
    } catch (const QuantityError& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("\"") + bad + "\""), std::string::npos) << e.what();
    }
  }
  std::string error;
  EXPECT_FALSE(Quantity::try_parse("12 cores", &error));
  EXPECT_NE(error.find("12 cores"), std::string::npos);
}

TEST(K8sQuantity, degenerate_numbers_parse_as_zero_like_upstream) {
  // parseQuantityString returns num "0" for an empty number: ".", "-.", "+", "-" are zero.
  for (const char* zero : {".", "-.", "+", "-", "-0", "+0", "000", "0.000", "-0Mi"}) {
    SCOPED_TRACE(zero);
    EXPECT_TRUE(q(zero).is_zero());
    EXPECT_EQ(q(zero).to_string(), "0");
  }
}

TEST(K8sQuantity, prints_the_canonical_form_of_the_upstream_string_table) {
  struct Case {
    Quantity in;
    const char* expect;
    const char* alternate;
  };
  const Case table[] = {
      {dec(1LL << 30, 0, F::BinarySI), "1Gi", "1024Mi"},
      {dec(300LL << 20, 0, F::BinarySI), "300Mi", "307200Ki"},
      {dec(6 * 1024, 0, F::BinarySI), "6Ki", ""},
      {dec(1001LL << 30, 0, F::BinarySI), "1001Gi", "1025024Mi"},
      {dec(1LL << 40, 0, F::BinarySI), "1Ti", "1024Gi"},
      {dec(5, 0, F::BinarySI), "5", "5000m"},
      {dec(500, -3, F::BinarySI), "500m", "0.5"},
      {dec(1, 9, F::DecimalSI), "1G", "1000M"},
      {dec(1000, 6, F::DecimalSI), "1G", "0.001T"},
      {dec(1000000, 3, F::DecimalSI), "1G", ""},
      {dec(1000000000, 0, F::DecimalSI), "1G", ""},
      {dec(1, -3, F::DecimalSI), "1m", "1000u"},
      {dec(80, -3, F::DecimalSI), "80m", ""},
      {dec(1080, -3, F::DecimalSI), "1080m", "1.08"},
      {dec(108, -2, F::DecimalSI), "1080m", "1080000000n"},
      {dec(10800, -4, F::DecimalSI), "1080m", ""},
      {dec(300, 6, F::DecimalSI), "300M", ""},
      {dec(1, 12, F::DecimalSI), "1T", ""},
      {dec(1, 18, F::DecimalSI), "1E", ""},
      {dec(1, 21, F::DecimalSI), "1e21", "1000E"},
      {dec(5, 21, F::DecimalSI), "5e21", "5000E"},
      {dec(1, 24, F::DecimalSI), "1e24", "1000000E"},
      {dec(1234567, 6, F::DecimalSI), "1234567M", ""},
      {dec(1234567, -3, F::BinarySI), "1234567m", ""},
      {dec(3, 3, F::DecimalSI), "3k", ""},
      {dec(1025, 0, F::BinarySI), "1025", ""},
      {dec(0, 0, F::DecimalSI), "0", ""},
      {dec(0, 0, F::BinarySI), "0", ""},
      {dec(1, 9, F::DecimalExponent), "1e9", ".001e12"},
      {dec(1, -3, F::DecimalExponent), "1e-3", "0.001e0"},
      {dec(1, -9, F::DecimalExponent), "1e-9", "1000e-12"},
      {dec(80, -3, F::DecimalExponent), "80e-3", ""},
      {dec(300, 6, F::DecimalExponent), "300e6", ""},
      {dec(1, 12, F::DecimalExponent), "1e12", ""},
      {dec(1, 3, F::DecimalExponent), "1e3", ""},
      {dec(3, 3, F::DecimalExponent), "3e3", ""},
      {dec(0, 0, F::DecimalExponent), "0", "00"},
      {dec(1, -9, F::DecimalSI), "1n", ""},
      {dec(80, -9, F::DecimalSI), "80n", ""},
      {dec(1080, -9, F::DecimalSI), "1080n", ""},
      {dec(108, -8, F::DecimalSI), "1080n", ""},
      {dec(1, -6, F::DecimalSI), "1u", ""},
      {dec(80, -6, F::DecimalSI), "80u", ""},
      {dec(1080, -6, F::DecimalSI), "1080u", ""},
  };
  for (const auto& c : table) {
    SCOPED_TRACE(c.expect);
    EXPECT_EQ(c.in.to_string(), c.expect);
    EXPECT_EQ(q(c.expect).to_string(), c.expect);
    if (*c.alternate != '\0') {
      EXPECT_EQ(q(c.alternate).to_string(), c.expect) << c.alternate;
    }
    if (!c.in.is_zero()) {
      EXPECT_EQ((-c.in).to_string(), std::string("-") + c.expect);
    }
  }
}

TEST(K8sQuantity, parse_then_emit_matches_upstream) {
  const std::pair<const char*, const char*> table[] = {
      {"1Ki", "1Ki"}, {"1Mi", "1Mi"}, {"1Gi", "1Gi"}, {"1024Mi", "1Gi"}, {"1000M", "1G"},
      {".001Ki", "1024m"}, {".000001Ki", "1024u"}, {".000000001Ki", "1024n"}, {".000000000001Ki", "2n"},
      // The forms the design names.
      {"1.5Gi", "1536Mi"}, {"1000m", "1"}, {"0.5", "500m"}, {"1e3", "1e3"}, {"1000", "1k"},
      {"1.5", "1500m"}, {"100m", "100m"}, {"+1k", "1k"}, {".5", "500m"}, {"0.1", "100m"},
      {"1E-3", "1e-3"}, {"2000m", "2"}, {"1.5k", "1500"}, {"1536Ki", "1536Ki"}, {"2048Ki", "2Mi"},
      {"1.5Ki", "1536"}, {"1.1Ki", "1126400m"}, {"8Ei", "9223372036854775807"}, {"62.5Ki", "64000"},
  };
  for (const auto& [in, expect] : table) {
    SCOPED_TRACE(in);
    EXPECT_EQ(q(in).to_string(), expect);
    if (in[0] != '+') {
      EXPECT_EQ(q(std::string("-") + in).to_string(), std::string("-") + expect);
    }
  }
}

TEST(K8sQuantity, value_and_milli_value_round_away_from_zero) {
  EXPECT_EQ(q("100m").milli_value(), 100);
  EXPECT_EQ(q("100m").value(), 1);
  EXPECT_EQ(q("1.5").value(), 2);
  EXPECT_EQ(q("-1.5").value(), -2);
  EXPECT_EQ(q("1.5Gi").value(), 1610612736);
  EXPECT_EQ(q("0.1m").milli_value(), 1);
  EXPECT_EQ(q("2").milli_value(), 2000);
  EXPECT_EQ(q("128Mi").value(), 134217728);
  EXPECT_EQ(q("1n").scaled_value(-9), 1);
  EXPECT_EQ(q("9.01").scaled_value(-1), 91);  // RoundUp table: 9.01 at scale -1 is 9.1
  EXPECT_EQ(q("9.01").scaled_value(2), 1);
  EXPECT_EQ(q("1e20").value(), INT64_MAX);  // saturates where upstream overflows
  EXPECT_EQ(q("-1e20").value(), INT64_MIN);
  EXPECT_DOUBLE_EQ(q("250m").as_double(), 0.25);
  EXPECT_DOUBLE_EQ(q("1Gi").as_double(), 1073741824.0);
  EXPECT_EQ(q("5n").nano_value(), 5);
  EXPECT_FALSE(q("1e20").nano_value().has_value());
}

TEST(K8sQuantity, compares_across_formats) {
  EXPECT_EQ(q("0").compare(q("0")), 0);
  EXPECT_EQ(q("100m").compare(q("50m")), 1);
  EXPECT_EQ(q("50m").compare(q("100m")), -1);
  EXPECT_EQ(q("10000T").compare(q("100Gi")), 1);
  EXPECT_EQ(q("1Ki"), q("1024"));
  EXPECT_EQ(q("1e3"), q("1k"));
  EXPECT_LT(q("999m"), q("1"));
  EXPECT_GT(q("1.000000001"), q("1"));
}

TEST(K8sQuantity, add_and_sub_keep_the_format_of_a_nonzero_operand) {
  for (const char* value : {"100m", "1Gi"}) {
    SCOPED_TRACE(value);
    EXPECT_EQ((q(value) + q("0")).to_string(), value);
    EXPECT_EQ((q("0") + q(value)).to_string(), value);
    EXPECT_EQ((q(value) - q("0")).to_string(), value);
    EXPECT_EQ((q("0") - q(value)).to_string(), (-q(value)).to_string());
  }
  EXPECT_EQ((q("250m") + q("1")).to_string(), "1250m");
  EXPECT_EQ((q("1Gi") + q("512Mi")).to_string(), "1536Mi");
  EXPECT_EQ((q("1Gi") - q("1Gi")).to_string(), "0");
  EXPECT_EQ((q("100m") - q("250m")).to_string(), "-150m");
  EXPECT_EQ((q("1e3") + q("1e3")).to_string(), "2e3");
  EXPECT_EQ(Quantity::from_milli(9010).to_string(), "9010m");
  EXPECT_EQ((-Quantity::from_milli(901 * 10)).to_string(), "-9010m");
}

TEST(K8sQuantity, new_set_matches_upstream) {
  EXPECT_EQ(Quantity::from_milli(1).to_string(), "1m");
  EXPECT_EQ(Quantity::from_milli(1000).to_string(), "1");
  EXPECT_EQ(Quantity::from_milli(1234000).to_string(), "1234");
  EXPECT_EQ(Quantity::from_milli(1024, F::BinarySI).to_string(), "1024m");
  EXPECT_EQ(Quantity::from_milli(1024 * 1024, F::BinarySI).to_string(), "1048576m");
  EXPECT_EQ(Quantity::from_value(1000).to_string(), "1k");
  EXPECT_EQ(Quantity::from_value(1234000).to_string(), "1234k");
  EXPECT_EQ(Quantity::from_value(1024, F::BinarySI).to_string(), "1Ki");
  EXPECT_EQ(Quantity::from_value(1000000, F::DecimalExponent).to_string(), "1e6");
  EXPECT_EQ(Quantity::from_value(1024 * 1024, F::BinarySI).to_string(), "1Mi");
  EXPECT_EQ(Quantity::from_scaled(1000, -9).to_string(), "1u");
  EXPECT_EQ(Quantity::from_scaled(1000, -6).to_string(), "1m");
}

TEST(K8sQuantity, huge_and_tiny_values_are_exact_or_refused) {
  EXPECT_EQ(q("18446744073709551616").to_string(), "18446744073709551616");
  EXPECT_EQ(q("1.2345").to_string(), "1234500u");
  EXPECT_EQ(q("1e28").to_string(), "10e27");
  EXPECT_EQ(q("100000000000000000000000000000Ki").to_string(), "9223372036854775807");
  EXPECT_EQ(q("0." + std::string(3000, '0') + "1").to_string(), "1n");
  EXPECT_EQ(q("0." + std::string(3000, '0') + "1Ei").to_string(), "1n");
  EXPECT_EQ(q("1e-99999").to_string(), "1e-9");
  EXPECT_EQ(q("1e-99999").nano_value(), 1);
  EXPECT_EQ(q("0e99999").to_string(), "0");
  EXPECT_THROW(q("1e30"), QuantityError);
  EXPECT_THROW(q(std::string(40, '9')), QuantityError);
  EXPECT_THROW(q(std::string(5000, '1')), QuantityError);
  EXPECT_THROW(q("100000000000000000000E") + q("100000000000000000000E"), QuantityError);
}

}  // namespace

// Plain "<digits><suffix>" quantities take a direct path; "+<digits>.0<suffix>" the general
// one. Both must give the same value, format and canonical text, at every digit count up to
// where the direct path stops (9 digits) and past it.
TEST(K8sQuantity, plain_integers_with_common_suffixes_equal_the_general_parse) {
  const char* suffixes[] = {"", "m", "k", "M", "G", "Ki", "Mi", "Gi", "Ti", "n", "u", "E"};
  std::uint64_t x = 0x9E3779B97F4A7C15ull;
  for (int digits = 1; digits <= 11; ++digits) {
    for (int round = 0; round < 40; ++round) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      std::string n = std::to_string(1 + x % 9);
      for (int i = 1; i < digits; ++i)
        n += static_cast<char>('0' + (x >> (i * 3)) % (round % 4 == 0 ? 1 : 10));
      for (const char* suffix : suffixes) {
        const std::string plain = n + suffix;
        const std::string general = "+" + n + ".0" + suffix;
        SCOPED_TRACE(plain);
        const Quantity a = q(plain);
        const Quantity b = q(general);
        EXPECT_EQ(a.compare(b), 0);
        EXPECT_EQ(a.format(), b.format());
        EXPECT_EQ(a.to_string(), b.to_string());
        EXPECT_EQ(a.nano_value(), b.nano_value());
      }
    }
  }
  EXPECT_EQ(q("250m").milli_value(), 250);
  EXPECT_EQ(q("64Mi").value(), 64 << 20);
  EXPECT_EQ(q("1000m").to_string(), "1");
  EXPECT_EQ(q("999999999Gi").format(), F::BinarySI);
}
