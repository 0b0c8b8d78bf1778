package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func reconstructCmd() *cobra.Command {
	return &cobra.Command{Use: "reconstruct", Short: "reconstruct (not yet implemented)", RunE: func(*cobra.Command, []string) error {
		return errors.New("not yet implemented")
	}}
}
