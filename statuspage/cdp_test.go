package statuspage_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// browser is a headless Chromium driven over the DevTools protocol on a
// pipe (--remote-debugging-pipe: JSON messages ending in a NUL byte, on
// the browser's file descriptors 3 and 4): no port, no websocket, no
// module to depend on.
type browser struct {
	cmd    *exec.Cmd
	toB    *os.File // the browser reads commands from it (its fd 3)
	fromB  *os.File // the browser writes replies and events to it (its fd 4)
	stderr string   // the file the browser's output goes to
	exited chan struct{}
	read   chan struct{} // closed when the reader has stopped

	mu       sync.Mutex
	next     int
	pending  map[int]chan cdpMessage
	problems []string // console errors, exceptions, failed requests
	loads    int      // pages loaded (Page.loadEventFired)
}

// cdpMessage is a DevTools protocol message: a reply (ID) or an event
// (Method).
type cdpMessage struct {
	ID     int             `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *cdpError       `json:"error,omitempty"`
	Page   string          `json:"sessionId,omitempty"` // the attached page a command is for; "" for the browser
}

type cdpError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *cdpError) Error() string { return fmt.Sprintf("devtools: %s (%d)", e.Message, e.Code) }

// startBrowser starts Chromium at path, stopped when the test ends.
func startBrowser(t *testing.T, path string) *browser {
	t.Helper()
	dir := t.TempDir()
	toR, toW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	fromR, fromW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "chromium.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(path,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--remote-debugging-pipe", "about:blank")
	cmd.ExtraFiles = []*os.File{toR, fromW} // fds 3 and 4
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its child processes in its own group, to end them all
	if err := cmd.Start(); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	_ = toR.Close()
	_ = fromW.Close()
	b := &browser{cmd: cmd, toB: toW, fromB: fromR, stderr: logPath,
		exited: make(chan struct{}), read: make(chan struct{}), pending: make(map[int]chan cdpMessage)}
	go func() { _ = cmd.Wait(); close(b.exited) }()
	go b.readLoop()
	t.Cleanup(func() { b.close(t) })
	return b
}

// readLoop dispatches what the browser writes until the pipe closes.
func (b *browser) readLoop() {
	defer close(b.read)
	r := bufio.NewReader(b.fromB)
	for {
		raw, err := r.ReadBytes(0)
		if err != nil {
			b.mu.Lock()
			for id, ch := range b.pending {
				close(ch)
				delete(b.pending, id)
			}
			b.mu.Unlock()
			return
		}
		var m cdpMessage
		if err := json.Unmarshal(raw[:len(raw)-1], &m); err != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			if ch := b.pending[m.ID]; ch != nil {
				ch <- m
				delete(b.pending, m.ID)
			}
		} else {
			b.event(m)
		}
		b.mu.Unlock()
	}
}

// event records what the test asserts about; b.mu is held.
func (b *browser) event(m cdpMessage) {
	var p struct {
		Type             string                `json:"type"`
		Args             []struct{ Value any } `json:"args"`
		ExceptionDetails struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
		Entry struct {
			Level, Text, URL string
		} `json:"entry"`
		ErrorText string `json:"errorText"`
		Canceled  bool   `json:"canceled"`
		Response  struct {
			URL    string `json:"url"`
			Status int    `json:"status"`
		} `json:"response"`
	}
	_ = json.Unmarshal(m.Params, &p)
	switch m.Method {
	case "Page.loadEventFired":
		b.loads++
	case "Runtime.exceptionThrown":
		b.problems = append(b.problems, "exception: "+p.ExceptionDetails.Text)
	case "Runtime.consoleAPICalled":
		if p.Type == "error" || p.Type == "assert" || p.Type == "warning" {
			b.problems = append(b.problems, fmt.Sprintf("console.%s: %v", p.Type, p.Args))
		}
	case "Log.entryAdded":
		if p.Entry.Level == "error" || p.Entry.Level == "warning" {
			b.problems = append(b.problems, fmt.Sprintf("log %s: %s %s", p.Entry.Level, p.Entry.Text, p.Entry.URL))
		}
	case "Network.loadingFailed":
		b.problems = append(b.problems, fmt.Sprintf("request failed: %s (canceled %v)", p.ErrorText, p.Canceled))
	case "Network.responseReceived":
		if p.Response.Status >= 400 {
			b.problems = append(b.problems, fmt.Sprintf("HTTP %d for %s", p.Response.Status, p.Response.URL))
		}
	}
}

// call sends a command (to the attached page, unless it is "") and
// decodes its result into result, unless it is nil.
func (b *browser) call(ctx context.Context, page, method string, params, result any) error {
	if params == nil {
		params = struct{}{}
	}
	b.mu.Lock()
	b.next++
	id := b.next
	ch := make(chan cdpMessage, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	p, err := json.Marshal(params)
	if err != nil {
		return err
	}
	msg, err := json.Marshal(cdpMessage{ID: id, Method: method, Params: p, Page: page})
	if err != nil {
		return err
	}
	if _, err := b.toB.Write(append(msg, 0)); err != nil {
		return fmt.Errorf("devtools %s: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		switch {
		case !ok:
			return fmt.Errorf("devtools %s: the browser went away", method)
		case m.Error != nil:
			return fmt.Errorf("%s: %w", method, m.Error)
		case result != nil:
			return json.Unmarshal(m.Result, result)
		}
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		delete(b.pending, id)
		b.mu.Unlock()
		return fmt.Errorf("devtools %s: %w", method, ctx.Err())
	}
}

// Problems returns what went wrong in the pages so far.
func (b *browser) Problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// Loads returns how many pages loaded so far.
func (b *browser) Loads() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.loads
}

// close asks the browser to quit, kills its process group if it does not
// within 10s, and waits for it and the reader.
func (b *browser) close(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = b.call(ctx, "", "Browser.close", nil, nil)
	cancel()
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		t.Logf("chromium did not quit; killing its process group %d", b.cmd.Process.Pid)
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-b.exited
	}
	_ = b.toB.Close()
	_ = b.fromB.Close() // ends the reader even if a child process still holds the pipe
	<-b.read
	if t.Failed() {
		if out, err := os.ReadFile(b.stderr); err == nil {
			t.Logf("chromium's output (last 4 KiB):\n%s", tail(string(out), 4096))
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// tab is a page of the browser.
type tab struct {
	b  *browser
	id string // what Target.attachToTarget gave
}

// open opens a blank page with the events the test asserts about enabled.
func (b *browser) open(ctx context.Context) (*tab, error) {
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		return nil, err
	}
	var att struct {
		ID string `json:"sessionId"`
	}
	if err := b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att); err != nil {
		return nil, err
	}
	tb := &tab{b: b, id: att.ID}
	for _, domain := range []string{"Page", "Runtime", "Log", "Network"} {
		if err := b.call(ctx, tb.id, domain+".enable", nil, nil); err != nil {
			return nil, err
		}
	}
	return tb, nil
}

// navigate loads url in the page.
func (tb *tab) navigate(ctx context.Context, url string) error {
	var res struct {
		ErrorText string `json:"errorText"`
	}
	if err := tb.b.call(ctx, tb.id, "Page.navigate", map[string]any{"url": url}, &res); err != nil {
		return err
	}
	if res.ErrorText != "" {
		return errors.New("navigate: " + res.ErrorText)
	}
	return nil
}

// eval evaluates a JavaScript expression whose value is a string (or null,
// returned as "") in the page. It fails while the page reloads.
func (tb *tab) eval(ctx context.Context, expr string) (string, error) {
	var res struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := tb.b.call(ctx, tb.id, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res); err != nil {
		return "", err
	}
	if res.ExceptionDetails != nil {
		return "", errors.New("evaluate: " + res.ExceptionDetails.Text)
	}
	s, _ := res.Result.Value.(string)
	return s, nil
}

// screenshot returns a PNG of the whole page, width pixels wide.
func (tb *tab) screenshot(ctx context.Context, width int) ([]byte, error) {
	if err := tb.b.call(ctx, tb.id, "Emulation.setDeviceMetricsOverride",
		map[string]any{"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": false}, nil); err != nil {
		return nil, err
	}
	h, err := tb.eval(ctx, `String(document.documentElement.scrollHeight)`)
	if err != nil {
		return nil, err
	}
	var height int
	if _, err := fmt.Sscan(h, &height); err != nil || height <= 0 {
		return nil, fmt.Errorf("page height %q", h)
	}
	var res struct {
		Data string `json:"data"`
	}
	if err := tb.b.call(ctx, tb.id, "Page.captureScreenshot", map[string]any{
		"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
	}, &res); err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(res.Data)
}
