package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/backprop-dev/backprop/live"
)

// TestPageTrainingOnlyOnLoopback: the page may start training jobs when
// serve listens on loopback or with --allow-training, and says why not
// otherwise.
func TestPageTrainingOnlyOnLoopback(t *testing.T) {
	cases := []struct {
		addr  string
		allow bool
		on    bool
	}{
		{"127.0.0.1:8080", false, true},
		{"localhost:8080", false, true},
		{"[::1]:8080", false, true},
		{"0.0.0.0:8080", false, false},
		{":8080", false, false},
		{"192.168.1.5:8080", false, false},
		{"0.0.0.0:8080", true, true},
	}
	for _, c := range cases {
		j := pageTraining(c.addr, c.allow, "fashion-mnist")
		if j.Data != "fashion-mnist" {
			t.Errorf("%s: data %q", c.addr, j.Data)
		}
		if on := j.Off == ""; on != c.on {
			t.Errorf("serve --addr %s (--allow-training %v): jobs on %v, want %v (%q)", c.addr, c.allow, on, c.on, j.Off)
		}
		if !c.on && (!strings.Contains(j.Off, c.addr) || !strings.Contains(j.Off, "--allow-training")) {
			t.Errorf("serve --addr %s: the reason %q names neither the address nor the flag", c.addr, j.Off)
		}
	}
}

// TestTrainServeServesClassroom: `train … --serve` serves the whole
// classroom (the page, its problems and API) with the job at /train,
// watching only.
func TestTrainServeServesClassroom(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := live.NewStore()
	var out bytes.Buffer
	if err := serveLiveOn(ctx, ln, store, &out); err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	if !strings.Contains(out.String(), "serving on "+base+"/train") {
		t.Errorf("announced %q, want the /train URL", out.String())
	}
	store.Start("gan", 2, 20)
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for path, want := range map[string]string{
		"/":             "backprop · classroom",
		"/train":        "backprop · training",
		"/api/problems": `"id":"autoencoder"`,
	} {
		if code, body := get(path); code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, want 200 with %q", path, code, want)
		}
	}
	resp, err := http.Post(base+"/api/solve", "application/json", strings.NewReader(`{"problem":"main"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("POST /api/solve: %d", resp.StatusCode)
	}
	_, body := get("/api/train/status")
	var st live.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.Kind != "gan" || st.TotalSteps != 20 || st.Controls != nil {
		t.Errorf("status %s: want the job's, without controls", body)
	}
	resp, err = http.Post(base+"/api/train/start", "application/json", strings.NewReader(`{"model":"gan","images":64,"epochs":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Errorf("train --serve started a job from the page: %d", resp.StatusCode)
	}
}
