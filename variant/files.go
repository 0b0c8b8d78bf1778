package variant

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/backprop-dev/backprop/internal/atomicfile"
)

// File is one output file, its path relative to the output directory.
type File struct {
	Path string
	Data []byte
}

// Files lists a variant's files. What a student gets is at the top of its
// directory; the key/ folder is for the teacher.
// An auto-encoder variant's key also holds derivation.md, the symbolic
// gradient equations its first task asks for.
func (v Variant) Files() []File {
	fs := []File{
		{filepath.Join(v.Name, "sheet.md"), v.Sheet},
		{filepath.Join(v.Name, "answers-template.json"), v.Template},
		{filepath.Join(v.Name, "key", "spec.yaml"), v.Spec},
		{filepath.Join(v.Name, "key", "key.json"), v.Key},
		{filepath.Join(v.Name, "key", "solution.md"), v.Solution},
		{filepath.Join(v.Name, "key", "solution-full.md"), v.SolutionFull},
	}
	if len(v.Derivation) > 0 {
		fs = append(fs, File{filepath.Join(v.Name, "key", "derivation.md"), v.Derivation})
	}
	return fs
}

// KeyFiles names the files of a variant's key/ folder, for listings.
func (v Variant) KeyFiles() []string {
	var out []string
	for _, f := range v.Files() {
		if filepath.Base(filepath.Dir(f.Path)) == "key" {
			out = append(out, filepath.Base(f.Path))
		}
	}
	return out
}

// Index is the README.md of an output directory: what was generated and
// which files to hand out.
func Index(o Options, vs []Variant) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# Problem variants, seed %d\n\n", o.Seed)
	fmt.Fprintf(&b, "Made by `backprop variant %s --count %d --problem %s`; the same command makes the same files.\n\n", command(o), o.Count, o.Problem)
	if o.AnyDraws {
		b.WriteString("Drawn with `--any-draws`: a sigmoid may saturate (every gradient near 0) and every ReLU may be on.\n\n")
	} else {
		fmt.Fprintf(&b, "Every variant is a fair draw: each sigmoid's pre-activation lies within ±%g and at least one ReLU unit is off, so that the masks matter", MaxLogit)
		if strings.Contains(o.Problem, "softmax") || strings.Contains(o.Problem, "convnet") || o.Problem == "all" {
			fmt.Fprintf(&b, "; no row of logits spreads by more than %g, a batch has two labels or more and one sample the network gets wrong, and no pooling window has a tie for its maximum", MaxLogit)
		}
		if strings.Contains(o.Problem, "rnn") || o.Problem == "all" {
			fmt.Fprintf(&b, "; every pre-activation of the RNN lies within ±%g, so that no tanh saturates", MaxRecurrent)
		}
		if strings.Contains(o.Problem, "attention") || o.Problem == "all" {
			fmt.Fprintf(&b, "; no row of attention weights has a probability above %g", MaxAttention)
		}
		b.WriteString(".\n\n")
	}
	b.WriteString("Hand out each variant's `sheet.md` (or `sheet.pdf`) and `answers-template.json`. Keep its `key/` folder: ")
	b.WriteString("`key/spec.yaml` is the network (`backprop solve --spec key/spec.yaml` shows the solution), `key/solution.md` the worked solution as a handout, ")
	b.WriteString("`key/solution-full.md` every element of every step (the step numbers `backprop grade` reports), ")
	b.WriteString("`key/derivation.md` (auto-encoder variants) the gradient equations, ")
	b.WriteString("and `key/key.json` what `backprop grade --key key/key.json --answers ANSWERS.json` checks a student's numbers against.\n\n")
	b.WriteString("| variant | problem | sheet | key |\n| --- | --- | --- | --- |\n")
	for _, v := range vs {
		links := make([]string, 0, 3)
		for _, f := range v.KeyFiles() {
			if f != "spec.yaml" {
				links = append(links, fmt.Sprintf("[%s](%s/key/%s)", f, v.Name, f))
			}
		}
		fmt.Fprintf(&b, "| %s | %s | [sheet.md](%s/sheet.md) | %s |\n", v.Name, v.Problem, v.Name, strings.Join(links, ", "))
	}
	return []byte(b.String())
}

// Write writes the variants and the index under dir, creating folders as
// needed; each file is replaced atomically.
func Write(dir string, o Options, vs []Variant) ([]string, error) {
	files := []File{{"README.md", Index(o, vs)}}
	for _, v := range vs {
		files = append(files, v.Files()...)
	}
	var written []string
	for _, f := range files {
		path := filepath.Join(dir, f.Path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return written, err
		}
		data := f.Data
		if err := atomicfile.WriteFile(path, func(w io.Writer) error {
			_, err := w.Write(data)
			return err
		}); err != nil {
			return written, err
		}
		written = append(written, path)
	}
	return written, nil
}

// PDFTools finds pandoc and a LaTeX engine on PATH (pdflatex, xelatex or
// lualatex, in that order: the sheets are plain ASCII with LaTeX math, which
// pdflatex handles with the fewest fonts installed); either is empty when
// missing.
func PDFTools() (pandoc, engine string) {
	pandoc, _ = exec.LookPath("pandoc")
	for _, e := range []string{"pdflatex", "xelatex", "lualatex"} {
		if p, err := exec.LookPath(e); err == nil {
			return pandoc, p
		}
	}
	return pandoc, ""
}

// PDF turns a sheet into a PDF with pandoc and the given LaTeX engine.
// SOURCE_DATE_EPOCH is fixed and, with pdflatex, the trailer ID left out,
// so that the same sheet gives the same PDF bytes.
func PDF(ctx context.Context, pandoc, engine, md, pdf string) error {
	var err error
	if md, err = filepath.Abs(md); err != nil {
		return err
	}
	if pdf, err = filepath.Abs(pdf); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	args := []string{md, "--from", "markdown", "--pdf-engine", engine, "-V", "geometry:margin=2cm", "-o", pdf}
	if filepath.Base(engine) == "pdflatex" {
		// no trailer ID (it hashes the temporary file name): same bytes every run
		args = append(args, "-V", `header-includes=\pdftrailerid{}`)
	}
	cmd := exec.CommandContext(ctx, pandoc, args...)
	cmd.Dir = filepath.Dir(md)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=0", "FORCE_SOURCE_DATE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if len(msg) > 600 {
			msg = msg[len(msg)-600:]
		}
		return fmt.Errorf("pandoc %s: %v\n%s", filepath.Base(md), err, msg)
	}
	return nil
}
