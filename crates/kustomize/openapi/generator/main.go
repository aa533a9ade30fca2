// Command generator derives the compact OpenAPI table embedded by the
// ferroflux-kustomize crate from the Kubernetes schema that kustomize itself
// compiles in (sigs.k8s.io/kustomize/kyaml/openapi, the same module version
// kustomize v5.8.1 uses). It keeps only what a build needs:
//
//   - per definition, the fields that lead to lists with a patch strategy
//     (x-kubernetes-patch-strategy, x-kubernetes-patch-merge-key,
//     x-kubernetes-list-map-keys), following $refs, arrays and maps;
//   - the definition of each group/version/kind;
//   - whether each kind is namespaced (kustomize's IsNamespaceScoped).
//
// Run from this directory: go run . > ../kubernetes-openapi.json
package main

import (
	"encoding/json"
	"os"
	"sort"
	"strings"

	"k8s.io/kube-openapi/pkg/validation/spec"
	"sigs.k8s.io/kustomize/kyaml/openapi"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// node is the compact form of a schema: a reference to a definition, an
// array with its element schema, a map with its value schema, or inline
// properties; plus the patch strategy and merge keys of a list.
type node struct {
	Ref        string           `json:"r,omitempty"`
	Items      *node            `json:"i,omitempty"`
	Additional *node            `json:"a,omitempty"`
	Properties map[string]*node `json:"p,omitempty"`
	Array      bool             `json:"t,omitempty"`
	Strategy   string           `json:"s,omitempty"`
	Keys       []string         `json:"k,omitempty"`
}

type table struct {
	Version     string                      `json:"version"`
	Definitions map[string]map[string]*node `json:"definitions"`
	Kinds       map[string]string           `json:"kinds"`
	Namespaced  map[string]bool             `json:"namespaced"`
}

const refPrefix = "#/definitions/"

func compact(s *spec.Schema) *node {
	n := &node{}
	if ref := s.Ref.String(); ref != "" {
		n.Ref = strings.TrimPrefix(ref, refPrefix)
	}
	if len(s.Type) == 1 && s.Type[0] == "array" {
		n.Array = true
		if s.Items != nil && s.Items.Schema != nil {
			n.Items = compact(s.Items.Schema)
		}
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		n.Additional = compact(s.AdditionalProperties.Schema)
	}
	if len(s.Properties) > 0 {
		n.Properties = map[string]*node{}
		for name, p := range s.Properties {
			p := p
			if c := compact(&p); c != nil {
				n.Properties[name] = c
			}
		}
		if len(n.Properties) == 0 {
			n.Properties = nil
		}
	}
	rs := openapi.ResourceSchema{Schema: s}
	strategy, keys := rs.PatchStrategyAndKeyList()
	n.Strategy = strategy
	if len(keys) > 0 {
		n.Keys = keys
	}
	if n.Ref == "" && n.Items == nil && n.Additional == nil && n.Properties == nil && n.Strategy == "" {
		// A primitive, or a list whose elements are primitives and which has
		// no strategy: a build treats it exactly like a missing schema.
		return nil
	}
	return n
}

func main() {
	root := openapi.Schema()
	out := table{
		Version:     openapi.GetSchemaVersion(),
		Definitions: map[string]map[string]*node{},
		Kinds:       map[string]string{},
		Namespaced:  map[string]bool{},
	}
	names := make([]string, 0, len(root.Definitions))
	for name := range root.Definitions {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		def := root.Definitions[name]
		if strings.HasPrefix(name, "io.k8s.kustomize") || strings.HasPrefix(name, "io.k8s.api.kustomize") {
			continue
		}
		props := map[string]*node{}
		for field, p := range def.Properties {
			p := p
			if c := compact(&p); c != nil {
				props[field] = c
			}
		}
		out.Definitions[name] = props
		gvks, ok := def.Extensions["x-kubernetes-group-version-kind"].([]interface{})
		if !ok {
			continue
		}
		for _, g := range gvks {
			m, ok := g.(map[string]interface{})
			if !ok {
				continue
			}
			group, _ := m["group"].(string)
			version, _ := m["version"].(string)
			kind, _ := m["kind"].(string)
			apiVersion := version
			if group != "" {
				apiVersion = group + "/" + version
			}
			key := apiVersion + "|" + kind
			out.Kinds[key] = name
			if ns, found := openapi.IsNamespaceScoped(yaml.TypeMeta{APIVersion: apiVersion, Kind: kind}); found {
				out.Namespaced[key] = ns
			}
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		panic(err)
	}
}
