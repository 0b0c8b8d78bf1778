package live

import (
	"bytes"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func getJSON(t *testing.T, url string) Status {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func tinyPNG(t *testing.T, shade uint8) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 4, 4))
	for i := range img.Pix {
		img.Pix[i] = shade
	}
	img.SetGray(0, 0, color.Gray{Y: 255 - shade})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestPublishAndReadBack publishes fake GAN progress and reads it back
// through the HTTP handler, as the page does.
func TestPublishAndReadBack(t *testing.T) {
	s := NewStore()
	clock := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	s.now = func() time.Time { return clock }
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	st := getJSON(t, ts.URL+"/api/train/status")
	if st.Active || st.Done || st.Step != 0 || len(st.Losses) != 0 {
		t.Errorf("empty store: %+v", st)
	}
	resp, err := http.Get(ts.URL + "/api/train/grid.png")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("grid before any: %d, want 404", resp.StatusCode)
	}

	s.Start("gan", 2, 10)
	for step := 1; step <= 4; step++ {
		clock = clock.Add(time.Second)
		s.Publish(Update{Epoch: 1, Step: step, Losses: map[string]float64{"D": 1.0 / float64(step), "G": float64(step)}, D: &DScores{Real: 0.9, Fake: 0.1 * float64(step)}})
	}
	grid := tinyPNG(t, 40)
	s.PublishGrid(grid)
	s.Publish(Update{Message: "checkpoint saved"})

	st = getJSON(t, ts.URL+"/api/train/status")
	if !st.Active || st.Kind != "gan" || st.Epoch != 1 || st.Epochs != 2 || st.Step != 4 || st.TotalSteps != 10 {
		t.Errorf("status: %+v", st)
	}
	if st.Progress != 40 {
		t.Errorf("progress %v, want 40", st.Progress)
	}
	if st.Elapsed != 4 || st.ETA != 6 {
		t.Errorf("elapsed %v s, ETA %v s; want 4 and 6", st.Elapsed, st.ETA)
	}
	if len(st.Losses["D"]) != 4 || st.Losses["G"][3] != (Point{4, 4}) || st.Losses["D"][1] != (Point{2, 0.5}) {
		t.Errorf("losses %+v", st.Losses)
	}
	if len(st.DReal) != 4 || st.DFake[2].Value != 0.1*float64(3) || st.DReal[0] != (Point{1, 0.9}) {
		t.Errorf("D history %+v %+v", st.DReal, st.DFake)
	}
	if st.GridVersion != 1 || st.Message != "checkpoint saved" {
		t.Errorf("grid version %d, message %q", st.GridVersion, st.Message)
	}
	resp, err = http.Get(ts.URL + "/api/train/grid.png")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "image/png" || !bytes.Equal(got, grid) {
		t.Errorf("grid: %s, %d bytes", resp.Header.Get("Content-Type"), len(got))
	}
	grid[10] ^= 0xff // the store kept its own copy
	if g, _ := s.Grid(); bytes.Equal(g, grid) {
		t.Error("the store shares the caller's PNG buffer")
	}

	s.Finish(errors.New("out of memory"))
	st = getJSON(t, ts.URL+"/api/train/status")
	if st.Active || !st.Done || st.Error != "out of memory" || st.ETA != 0 {
		t.Errorf("finished: %+v", st)
	}

	// a new job starts from a clean history
	s.Start("autoencoder", 1, 0)
	st = getJSON(t, ts.URL+"/api/train/status")
	if st.Kind != "autoencoder" || len(st.Losses) != 0 || st.Done || st.Error != "" || st.Step != 0 {
		t.Errorf("restarted: %+v", st)
	}
}

func TestPagesServed(t *testing.T) {
	ts := httptest.NewServer(NewStore().Handler())
	defer ts.Close()
	for path, want := range map[string]string{"/train": "/api/train/status", "/train/train.js": "/api/train/status"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) && !strings.Contains(string(b), "train.js") {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
}

func TestHistoryIsBounded(t *testing.T) {
	s := NewStore()
	s.Start("gan", 0, 0)
	for i := 1; i <= 5*MaxPoints; i++ {
		s.Publish(Update{Step: i, Losses: map[string]float64{"loss": float64(i)}})
	}
	h := s.Snapshot().Losses["loss"]
	if len(h) > MaxPoints || len(h) < MaxPoints/2 {
		t.Errorf("history of %d points", len(h))
	}
	if h[0].Step != 1 || h[len(h)-1].Step != 5*MaxPoints {
		t.Errorf("history spans steps %d to %d", h[0].Step, h[len(h)-1].Step)
	}
	for i := 1; i < len(h); i++ {
		if h[i].Step <= h[i-1].Step {
			t.Fatalf("steps out of order at %d", i)
		}
	}
}

func TestConcurrentPublishAndRead(t *testing.T) {
	s := NewStore()
	s.Start("gan", 1, 1000)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 1; i <= 1000; i++ {
			s.Publish(Update{Step: i, Losses: map[string]float64{"G": 1}, D: &DScores{0.5, 0.5}})
			if i%100 == 0 {
				s.PublishGrid([]byte{byte(i)})
			}
		}
	}()
	go func() {
		defer wg.Done()
		for range 20 {
			resp, err := http.Get(ts.URL + "/api/train/status")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		}
	}()
	wg.Wait()
	if st := s.Snapshot(); st.Step != 1000 || st.Progress != 100 || st.GridVersion != 10 {
		t.Errorf("after concurrent publishing: step %d, progress %v, grid %d", st.Step, st.Progress, st.GridVersion)
	}
}

func TestPackageLevelFunctions(t *testing.T) {
	old := Default
	Default = NewStore()
	defer func() { Default = old }()
	Start("gan", 3, 30)
	Publish(Update{Epoch: 1, Step: 3})
	PublishGrid([]byte{1})
	Finish(nil)
	st := Default.Snapshot()
	if st.Step != 3 || !st.Done || st.Progress != 100 || st.GridVersion != 1 {
		t.Errorf("%+v", st)
	}
}
