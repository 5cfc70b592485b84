//go:build tools

// Package tools pins what the build needs so `go mod tidy` keeps it in go.sum: the
// provider's packages (its main package is copied from the module cache at build time)
// and the schema package that upstream's generate.go uses.
package tools

import (
	_ "github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	_ "github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
	_ "github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)
