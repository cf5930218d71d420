package tenantsfile

import (
	"cmp"
	"slices"

	"github.com/trusted-delivery/trusted-delivery/internal/tenancy"
)

// Options adjusts Load.
type Options struct {
	// AllowedClusterRoles are the ClusterRoles that the tenants may bind, as
	// the manager's --allowed-cluster-roles flag sets them. Empty means
	// tenancy.DefaultAllowedClusterRoles.
	AllowedClusterRoles []string
}

// Load parses and validates the tenants file data, named name in messages.
// It checks everything that the API server or the operator would reject
// later and returns every problem at once as an ErrorList, sorted by line.
// The File is nil whenever the error is not.
func Load(name string, data []byte, opts Options) (*File, error) {
	d := &decoder{file: name, positions: map[string]position{}}
	f := d.parse(data)
	if f != nil {
		v := &validator{decoder: d, opts: tenancy.Options{AllowedClusterRoles: opts.AllowedClusterRoles}}
		v.validate(f)
	}
	if len(d.errs) > 0 {
		slices.SortStableFunc(d.errs, func(a, b *Error) int {
			return cmp.Compare(lineOrder(a), lineOrder(b))
		})
		return nil, d.errs
	}
	return f, nil
}

// lineOrder sorts problems without a line after those with one.
func lineOrder(e *Error) int {
	if e.Line == 0 {
		return int(^uint(0) >> 1)
	}
	return e.Line
}
