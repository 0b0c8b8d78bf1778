package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func evalCmd() *cobra.Command {
	return &cobra.Command{Use: "eval", Short: "eval (not yet implemented)", RunE: func(*cobra.Command, []string) error {
		return errors.New("not yet implemented")
	}}
}
