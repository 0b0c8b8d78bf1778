package main

import "github.com/spf13/cobra"

func trainCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train a network on real images (autoencoder, gan)",
	}
	cmd.AddCommand(trainAutoencoderCmd(), trainGANCmd())
	return cmd
}
