// Command refwriter writes ../reference_writer.safetensors from the tensors
// that make_torch_fixture.py recorded from PyTorch in ../torch_fixture.json,
// with github.com/nlpodyssey/safetensors, a Go port of Hugging Face's Rust
// safetensors crate (its Serialize follows the reference implementation:
// tensors ordered by dtype alignment, then name; the JSON header padded with
// spaces to a multiple of 8 bytes). The official Python package is not in
// the registries this project's machines reach; this writer shares no code
// with backprop's reader, so a misreading of the format cannot hide in
// both. It lives in its own module under testdata so that the main module
// does not depend on it. Run from this directory:
//
//	go run .
package main

import (
	"encoding/binary"
	"encoding/json"
	"log"
	"math"
	"os"
	"strconv"

	st "github.com/nlpodyssey/safetensors"
)

func main() {
	raw, err := os.ReadFile("../torch_fixture.json")
	if err != nil {
		log.Fatal(err)
	}
	var fixture struct {
		Metadata map[string]string
		Tensors  map[string]struct {
			DType  string
			Shape  []uint64
			Values []string
		}
	}
	if err := json.Unmarshal(raw, &fixture); err != nil {
		log.Fatal(err)
	}
	views := map[string]st.TensorView{}
	for name, t := range fixture.Tensors {
		if len(t.Shape) == 0 {
			// The port rejects 0-d tensors (its element count of shape []
			// is 0, where the Rust crate's product is 1), so scalars are
			// left out of this file; torch_fixture.safetensors has them.
			continue
		}
		var data []byte
		var dtype st.DType
		for _, s := range t.Values {
			switch t.DType {
			case "F32":
				v, err := strconv.ParseFloat(s, 32)
				if err != nil {
					log.Fatalf("%s: %v", name, err)
				}
				dtype, data = st.F32, binary.LittleEndian.AppendUint32(data, math.Float32bits(float32(v)))
			case "F64":
				v, err := strconv.ParseFloat(s, 64)
				if err != nil {
					log.Fatalf("%s: %v", name, err)
				}
				dtype, data = st.F64, binary.LittleEndian.AppendUint64(data, math.Float64bits(v))
			case "I64":
				v, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					log.Fatalf("%s: %v", name, err)
				}
				dtype, data = st.I64, binary.LittleEndian.AppendUint64(data, uint64(v))
			default:
				log.Fatalf("%s: dtype %s", name, t.DType)
			}
		}
		if len(t.Values) == 0 {
			dtype, _ = st.ParseDType(t.DType)
		}
		v, err := st.NewTensorView(dtype, t.Shape, data)
		if err != nil {
			log.Fatalf("%s: %v", name, err)
		}
		views[name] = v
	}
	meta := map[string]string{}
	for k, v := range fixture.Metadata {
		meta[k] = v
	}
	meta["made_by"] = "github.com/nlpodyssey/safetensors (safetensors/testdata/refwriter)"
	out, err := st.Serialize(views, meta)
	if err != nil {
		log.Fatal(err)
	}
	// The reference reader must accept what its writer wrote.
	if _, err := st.Deserialize(out); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("../reference_writer.safetensors", out, 0o644); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote ../reference_writer.safetensors (%d bytes, %d tensors)", len(out), len(views))
}
