package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func sampleCmd() *cobra.Command {
	return &cobra.Command{Use: "sample", Short: "sample (not yet implemented)", RunE: func(*cobra.Command, []string) error {
		return errors.New("not yet implemented")
	}}
}
