package steps

import (
	"fmt"

	"github.com/Masterminds/semver/v3"
)

// Versions is a `kubernetes:` constraint on the running Kubernetes
// version (">=1.24", "<1.32", "~1.31"), as semantic versions; the empty
// constraint holds for every version.
type Versions struct {
	text string
	c    *semver.Constraints
}

func parseVersions(s string) (Versions, error) {
	if s == "" {
		return Versions{}, nil
	}
	c, err := semver.NewConstraint(s)
	if err != nil {
		return Versions{}, fmt.Errorf("%q is not a version constraint (e.g. \">=1.24\", \"<1.32\", \"~1.31\"): %v", s, err)
	}
	return Versions{text: s, c: c}, nil
}

// String is the constraint as written.
func (v Versions) String() string { return v.text }

// Holds reports whether the constraint holds for version, as kube-apiserver
// reports it ("v1.20.2", or "v1.30.1-eks-1a2b3c": a vendor's suffix is
// not a pre-release, so it is left out). A version that cannot be read
// holds for no constraint but the empty one.
func (v Versions) Holds(version string) bool {
	if v.c == nil {
		return true
	}
	sv, err := semver.NewVersion(version)
	if err != nil {
		return false
	}
	return v.c.Check(semver.New(sv.Major(), sv.Minor(), sv.Patch(), "", ""))
}
