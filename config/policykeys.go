package config

import (
	"fmt"
	"reflect"

	"gopkg.in/yaml.v3"
)

// PolicyKeys is the part of keys that is policy: which configured signing
// key signs. The key files themselves are per instance (every instance
// reads its own); the choice among them is made once, in the policy store,
// so that the admin API or a SIGHUP switches every instance at once
// (docs/operations.md "Rotating the signing key"). Each instance checks
// that the kid is one of its keys; a version naming a key it lacks is not
// applied there (docs/admin.md "Live on every instance").
type PolicyKeys struct {
	// ActiveSigningKey is keys.active_signing_key ("" for the first key).
	ActiveSigningKey string `yaml:"active_signing_key,omitempty"`
}

// UnmarshalYAML reads the keys mapping of a policy document or of a whole
// config file: active_signing_key is kept; the instance's key files and
// secrets are accepted and ignored (an import never sets them), and a key
// that keys does not have is an error, as everywhere in the file.
func (k *PolicyKeys) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: keys must be a mapping", n.Line)
	}
	known := map[string]bool{}
	for _, f := range yamlFields(reflect.TypeOf(Keys{})) {
		known[f.name] = true
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		name, v := n.Content[i], n.Content[i+1]
		switch {
		case !known[name.Value]:
			return fmt.Errorf("line %d: field %s not found in keys", name.Line, name.Value)
		case name.Value == "active_signing_key":
			if err := v.Decode(&k.ActiveSigningKey); err != nil {
				return err
			}
		}
	}
	return nil
}
