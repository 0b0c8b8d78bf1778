package onnx

import (
	"errors"
	"fmt"
)

// UnsupportedError reports a part of a model the engine does not
// implement: an operator, an attribute value, an element type or an
// operator set version. It names the node and the operator, and the
// attribute (or input) when one is to blame, so that the user knows what
// to change; the importer never substitutes a different computation.
type UnsupportedError struct {
	Node      string // the node's name, or its first output's when it has none; empty for the model as a whole
	Op        string // the operator type, e.g. "Conv"; "model" or "tensor" for what is not one node
	Attribute string // the attribute or input at fault; empty for the operator itself
	Detail    string // what is not supported and what is
}

// Error implements error.
func (e *UnsupportedError) Error() string {
	s := fmt.Sprintf("node %q (%s)", e.Node, e.Op)
	if e.Node == "" {
		s = e.Op
	}
	if e.Attribute != "" {
		s += ": " + e.Attribute
	}
	return s + ": not supported: " + e.Detail
}

// IsUnsupported reports whether err is (or wraps) an *UnsupportedError.
func IsUnsupported(err error) bool {
	var u *UnsupportedError
	return errors.As(err, &u)
}
