package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func trainAutoencoderCmd() *cobra.Command {
	return &cobra.Command{Use: "autoencoder", Short: "Train the seed's auto-encoder", RunE: func(*cobra.Command, []string) error {
		return errors.New("not yet implemented")
	}}
}
