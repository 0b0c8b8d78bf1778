package classroom

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"time"

	"github.com/backprop-dev/backprop/autoencoder"
	"github.com/backprop-dev/backprop/data"
	"github.com/backprop-dev/backprop/gan"
	"github.com/backprop-dev/backprop/live"
	trainrt "github.com/backprop-dev/backprop/training"
)

// The models the training view can train from the page.
const (
	ModelAutoencoder = "autoencoder" // Problem 2's auto-encoder, as `backprop train autoencoder`
	ModelGAN         = "gan"         // the DCGAN, as `backprop train gan`
)

// jobTestImages is the size of the test set an auto-encoder job measures
// its test error on after every epoch: the first images of the test split.
const jobTestImages = 1024

// jobSeed seeds every job started from the page, as --seed does.
const jobSeed = 1

// TrainingJobs configure the training jobs the page can start and stop at
// /train (Options.Training): a small auto-encoder or DCGAN run on the
// first images of a data set, one at a time, with the defaults of the
// training commands otherwise (batch 64, seed 1), writing nothing that
// outlives the job.
type TrainingJobs struct {
	// Data is the data set: "mnist" (the default), "fashion-mnist" or a
	// directory of IDX files, as `backprop train --data` takes it.
	Data string
	// Limits of a job; 0 takes live.DefaultMaxImages, DefaultJobImages,
	// DefaultMaxEpochs and DefaultMaxJobSeconds.
	MaxImages, DefaultImages, MaxEpochs int
	MaxDuration                         time.Duration
	// Off, when not "", keeps the page from starting jobs and is shown in
	// place of the controls: why, and how to allow them.
	Off string
}

// jobModels are the models the page offers, each needing at least one
// batch of images.
func jobModels() []live.Model {
	return []live.Model{
		{ID: ModelAutoencoder, Label: "auto-encoder (Problem 2)", MinImages: autoencoder.DefaultBatch},
		{ID: ModelGAN, Label: "DCGAN", MinImages: gan.DefaultBatch},
	}
}

// newJobs returns the page's jobs, publishing into store.
func newJobs(store *live.Store, t TrainingJobs) *live.Jobs {
	if t.Data == "" {
		t.Data = "mnist"
	}
	return live.NewJobs(store, live.JobsOptions{
		Models: jobModels(), Run: runJob(t.Data), Data: t.Data,
		MaxImages: t.MaxImages, DefaultImages: t.DefaultImages, MaxEpochs: t.MaxEpochs, MaxDuration: t.MaxDuration,
		Off: t.Off,
	})
}

// runJob trains the jobs of the page on the data set named dataName.
func runJob(dataName string) live.RunFunc {
	return func(ctx context.Context, req live.JobRequest, hooks trainrt.Hooks) error {
		// the data set loaded for the job (MNIST: some 250 MB) is garbage
		// once it ends: give the memory back rather than keep it with the
		// server
		defer debug.FreeOSMemory()
		switch req.Model {
		case ModelAutoencoder:
			return trainAutoencoder(ctx, dataName, req, hooks)
		case ModelGAN:
			return trainGAN(ctx, dataName, req, hooks)
		}
		return fmt.Errorf("no model %q", req.Model)
	}
}

// firstImages is a copy of the first n examples of d, so that the rest of
// the data set can be freed while the job runs; an error when d has fewer.
func firstImages(d *data.Dataset, n int) (*data.Dataset, error) {
	if d.Len() < n {
		return nil, fmt.Errorf("%s: the %s split has %d images, fewer than the %d asked for", d.Name, d.Split, d.Len(), n)
	}
	sub, err := autoencoder.Subset(d, n)
	if err != nil {
		return nil, err
	}
	c := *sub
	c.Images, c.Labels = sub.Images.Clone(), slices.Clone(sub.Labels)
	return &c, nil
}

// trainAutoencoder runs `backprop train autoencoder` on the first
// req.Images training images for req.Epochs epochs, its test error
// measured on the first jobTestImages test images; the reconstruction
// grid is the job's picture and nothing is written to disk.
func trainAutoencoder(ctx context.Context, dataName string, req live.JobRequest, hooks trainrt.Hooks) error {
	train, err := data.Load(dataName, data.Train)
	if err != nil {
		return err
	}
	if train, err = firstImages(train, req.Images); err != nil {
		return err
	}
	test, err := data.Load(dataName, data.Test)
	if err != nil {
		return err
	}
	if test, err = firstImages(test, min(jobTestImages, test.Len())); err != nil {
		return err
	}
	opt := autoencoder.DefaultOptions()
	opt.Epochs, opt.Seed, opt.Dataset, opt.Hooks = req.Epochs, jobSeed, dataName, hooks
	_, err = autoencoder.Train(ctx, train, test, opt)
	return err
}

// trainGAN runs `backprop train gan` (its default recipe) on the first
// req.Images training images for req.Epochs epochs; its files go to a
// temporary directory removed when the job ends, the sample grid of every
// epoch is the job's picture.
func trainGAN(ctx context.Context, dataName string, req live.JobRequest, hooks trainrt.Hooks) error {
	cfg := gan.Config{Data: dataName, Seed: jobSeed, Limit: req.Images, Batch: gan.DefaultBatch, Recipe: gan.DefaultRecipe}
	images, labels, err := gan.LoadLabeled(cfg)
	if err != nil {
		return err
	}
	if n := images.Dim(0); n < req.Images {
		return fmt.Errorf("%s: the train split has %d images, fewer than the %d asked for", dataName, n, req.Images)
	}
	tr, err := gan.NewLabeledTrainer(cfg, images.Clone(), labels)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "backprop-serve-gan-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	return tr.Run(ctx, req.Epochs, dir, hooks)
}
