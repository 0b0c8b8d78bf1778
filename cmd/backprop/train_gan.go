package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func trainGANCmd() *cobra.Command {
	return &cobra.Command{Use: "gan", Short: "Train the reference DCGAN", RunE: func(*cobra.Command, []string) error {
		return errors.New("not yet implemented")
	}}
}
