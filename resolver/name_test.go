package resolver

import "testing"

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{
		"API.internal.":  "api.internal",
		"api.internal":   "api.internal",
		"api.internal..": "api.internal.",
		".":              ".",
		`a\.`:            `a\.`, // the dot is escaped: part of the label
		`a\\.`:           `a\\`, // the backslash is escaped, the dot is not
		"":               "",
	} {
		if got := NormalizeName(in); got != want {
			t.Errorf("NormalizeName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTopicsNormalize: every topic of a name is the topic of its
// normalized form.
func TestTopicsNormalize(t *testing.T) {
	if Topic("API.internal.") != Topic("api.internal") || FailureTopic("API.internal.") != FailureTopic("api.internal") ||
		QueryTopic("API.internal.") != QueryTopic("api.internal") || RecoveryTopic("API.internal.") != RecoveryTopic("api.internal") {
		t.Fatal("topics of one name in two spellings differ")
	}
}
