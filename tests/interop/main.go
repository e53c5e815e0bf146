// Command ekhost plays eKuiper's side of every socket of a portable plugin, with mangos v3 and the
// socket options eKuiper sets (internal/plugin/portable/runtime/connection.go at 0014e7fab0dd).
//
// It reads one JSON command per line on stdin and writes one JSON answer per line on stdout:
//
//	{"id":1,"op":"listen_control","name":"lab"}  ->  {"id":1,"ok":true}
//
// Every operation is bounded: an operation that takes longer than its timeout_ms (default 20 s) makes
// the program print {"id":N,"error":"...","fatal":true} and exit 3, and it exits on EOF of stdin.
// Run with -print-options to print, as JSON, the options each channel's socket reports after they
// were applied as eKuiper applies them.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/pull"
	"go.nanomsg.org/mangos/v3/protocol/push"
	"go.nanomsg.org/mangos/v3/protocol/rep"
	_ "go.nanomsg.org/mangos/v3/transport/ipc"
)

// eKuiper's defaults for conf.Config.Portable (internal/conf/conf.go, etc/kuiper.yaml "portable:").
const (
	portableRecvTimeout = 5 * time.Second
	portableSendTimeout = 5 * time.Second
)

// channel describes one of eKuiper's sockets: its protocol, role, file name and options.
type channel struct {
	socket  string // rep, pull or push
	role    string // listen or dial
	file    string // file name pattern under the socket directory (eKuiper: /tmp)
	options map[string]interface{}
}

// The option maps of connection.go, one per Create*Channel function.
var channels = map[string]channel{
	// CreateControlChannel: "NO time out now for control channel".
	"control": {"rep", "listen", "plugin_%s.ipc", map[string]interface{}{
		mangos.OptionRecvDeadline: 1 * time.Hour,
		mangos.OptionMaxRecvSize:  0,
	}},
	// CreateSourceChannel.
	"source": {"pull", "listen", "%s.ipc", map[string]interface{}{
		mangos.OptionRecvDeadline: portableRecvTimeout,
		mangos.OptionMaxRecvSize:  0,
	}},
	// CreateSinkChannel (dialled with dialOptions).
	"sink": {"push", "dial", "%s.ipc", map[string]interface{}{
		mangos.OptionSendDeadline: portableSendTimeout,
		mangos.OptionMaxRecvSize:  0,
	}},
	// CreateSinkAckChannel.
	"ack": {"pull", "listen", "%s_ack.ipc", map[string]interface{}{
		mangos.OptionRecvDeadline: 1000 * time.Millisecond,
		mangos.OptionMaxRecvSize:  0,
	}},
	// CreateFunctionChannel: OptionRetryTime is not an option of REP; eKuiper ignores ErrBadOption.
	"function": {"rep", "listen", "func_%s.ipc", map[string]interface{}{
		mangos.OptionRecvDeadline: portableRecvTimeout,
		mangos.OptionSendDeadline: portableSendTimeout,
		mangos.OptionRetryTime:    time.Duration(0),
		mangos.OptionMaxRecvSize:  0,
	}},
}

// dialOptions of connection.go, used by CreateSinkChannel.
var dialOptions = map[string]interface{}{
	mangos.OptionDialAsynch:       false,
	mangos.OptionMaxReconnectTime: 5 * time.Second,
	mangos.OptionReconnectTime:    100 * time.Millisecond,
}

func newSocket(kind string) (mangos.Socket, error) {
	switch kind {
	case "rep":
		return rep.NewSocket()
	case "pull":
		return pull.NewSocket()
	default:
		return push.NewSocket()
	}
}

// setOptions applies options as connection.go's setSockOptions does; it returns those refused with
// ErrBadOption (eKuiper ignores them silently).
func setOptions(sock mangos.Socket, opts map[string]interface{}) ([]string, error) {
	var ignored []string
	for _, k := range sortedKeys(opts) {
		err := sock.SetOption(k, opts[k])
		if err == mangos.ErrBadOption {
			ignored = append(ignored, k)
		} else if err != nil {
			return nil, fmt.Errorf("option %s: %w", k, err)
		}
	}
	return ignored, nil
}

// listenWithRetry: six Listen attempts, 100 ms apart, as connection.go's listenWithRetry.
func listenWithRetry(sock mangos.Socket, url string) error {
	var err error
	for i := 0; i < 6; i++ {
		if err = sock.Listen(url); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

func sortedKeys(m map[string]interface{}) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// jsonValue renders an option value: durations in milliseconds.
func jsonValue(v interface{}) interface{} {
	if d, ok := v.(time.Duration); ok {
		return d.Milliseconds()
	}
	return v
}

// printOptions creates each channel's socket, applies its options, and reports what the socket reads back.
func printOptions() error {
	out := map[string]interface{}{}
	for name, ch := range channels {
		sock, err := newSocket(ch.socket)
		if err != nil {
			return err
		}
		ignored, err := setOptions(sock, ch.options)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		got := map[string]interface{}{}
		for k := range ch.options {
			if contains(ignored, k) {
				continue
			}
			v, err := sock.GetOption(k)
			if err != nil {
				return fmt.Errorf("%s: read %s: %w", name, k, err)
			}
			got[k] = jsonValue(v)
		}
		entry := map[string]interface{}{"socket": ch.socket, "role": ch.role, "options": got, "ignored": ignored}
		if ch.role == "dial" {
			d, err := sock.NewDialer("ipc:///nonexistent/ekhost.ipc", dialOptions)
			if err != nil {
				return fmt.Errorf("%s: dialer: %w", name, err)
			}
			dial := map[string]interface{}{}
			for k := range dialOptions {
				v, err := d.GetOption(k)
				if err != nil {
					return fmt.Errorf("%s: read dial option %s: %w", name, k, err)
				}
				dial[k] = jsonValue(v)
			}
			entry["dial"] = dial
		}
		_ = sock.Close()
		out[name] = entry
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

type request struct {
	ID        int     `json:"id"`
	Op        string  `json:"op"`
	Channel   string  `json:"channel"` // control, source, sink, ack, function
	Name      string  `json:"name"`    // plugin name, symbol, or <rule>_<op>_<instance>
	Data      *string `json:"data"`
	Size      int     `json:"size"` // send a generated payload of this many bytes instead of data
	Count     int     `json:"count"`
	TimeoutMs int     `json:"timeout_ms"`
}

type message struct {
	Len    int     `json:"len"`
	Sha256 string  `json:"sha256"`
	Data   *string `json:"data,omitempty"` // only for messages under 16 MiB
}

type answer struct {
	ID        int       `json:"id"`
	OK        bool      `json:"ok"`
	Error     string    `json:"error,omitempty"`
	Fatal     bool      `json:"fatal,omitempty"`
	Reply     *message  `json:"reply,omitempty"`
	Messages  []message `json:"messages,omitempty"`
	Discarded []string  `json:"discarded,omitempty"` // responses dropped before a re-send (ErrProtoState)
	Stale     int       `json:"stale,omitempty"`     // replies starting with 'h' that made the request go again
}

type host struct {
	dir   string
	mu    sync.Mutex
	socks map[string]mangos.Socket
	out   *json.Encoder
	outMu sync.Mutex
}

func (h *host) emit(a answer) {
	h.outMu.Lock()
	defer h.outMu.Unlock()
	_ = h.out.Encode(a)
}

func describe(b []byte) message {
	sum := sha256.Sum256(b)
	m := message{Len: len(b), Sha256: hex.EncodeToString(sum[:])}
	if len(b) < 16<<20 {
		s := string(b)
		m.Data = &s
	}
	return m
}

// payload is the request's data, or a generated one of Size bytes (byte i is i*7 mod 251).
func payload(r request) []byte {
	if r.Size > 0 {
		b := make([]byte, r.Size)
		for i := range b {
			b[i] = byte((i * 7) % 251)
		}
		return b
	}
	if r.Data != nil {
		return []byte(*r.Data)
	}
	return nil
}

func (h *host) key(r request) string { return r.Channel + ":" + r.Name }

func (h *host) get(r request) (mangos.Socket, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.socks[h.key(r)]
	if !ok {
		return nil, fmt.Errorf("no %s channel %q open", r.Channel, r.Name)
	}
	return s, nil
}

// open creates a channel's socket with eKuiper's options and listens or dials (OptionDialAsynch false).
func (h *host) open(r request) error {
	ch, ok := channels[r.Channel]
	if !ok {
		return fmt.Errorf("unknown channel %q", r.Channel)
	}
	sock, err := newSocket(ch.socket)
	if err != nil {
		return err
	}
	if _, err = setOptions(sock, ch.options); err != nil {
		_ = sock.Close()
		return err
	}
	url := "ipc://" + filepath.Join(h.dir, fmt.Sprintf(ch.file, r.Name))
	if ch.role == "listen" {
		err = listenWithRetry(sock, url)
	} else {
		err = sock.DialOptions(url, dialOptions)
	}
	if err != nil {
		_ = sock.Close()
		return fmt.Errorf("can't %s on %s: %w", ch.role, url, err)
	}
	h.mu.Lock()
	old := h.socks[h.key(r)]
	h.socks[h.key(r)] = sock
	h.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	return nil
}

func (h *host) close(r request) error {
	h.mu.Lock()
	sock, ok := h.socks[h.key(r)]
	delete(h.socks, h.key(r))
	h.mu.Unlock()
	if !ok {
		return fmt.Errorf("no %s channel %q open", r.Channel, r.Name)
	}
	return sock.Close()
}

// exchange is eKuiper's inverted REQ/REP call (NanomsgReqChannel.SendCmd, NanomsgReqRepChannel.Req):
// on ErrProtoState receive and drop the plugin's pending request, send again; a reply starting with
// 'h' is a stale handshake, so the request goes again.
func exchange(sock mangos.Socket, data []byte, a *answer) ([]byte, error) {
	for {
		err := sock.Send(data)
		if err == mangos.ErrProtoState {
			var prev []byte
			if prev, err = sock.Recv(); err == nil {
				a.Discarded = append(a.Discarded, string(prev))
				err = sock.Send(data)
			}
		}
		if err != nil {
			return nil, err
		}
		result, err := sock.Recv()
		if len(result) > 0 && result[0] == 'h' {
			a.Stale++
			continue
		}
		return result, err
	}
}

// handshake is NanomsgReqChannel.Handshake: one Recv with initTimeout, ErrProtoState tolerated.
func handshake(sock mangos.Socket, timeout time.Duration) ([]byte, error) {
	old, err := sock.GetOption(mangos.OptionRecvDeadline)
	if err != nil {
		return nil, err
	}
	if err = sock.SetOption(mangos.OptionRecvDeadline, timeout); err != nil {
		return nil, err
	}
	got, err := sock.Recv()
	if err != nil && err != mangos.ErrProtoState {
		return nil, err
	}
	return got, sock.SetOption(mangos.OptionRecvDeadline, old)
}

// recvMany receives Count messages (default 1), retrying on ErrRecvTimeout as eKuiper's source
// Subscribe and sink recvAck loops do; the operation's own timeout bounds the wait.
func recvMany(sock mangos.Socket, n int) ([]message, error) {
	if n <= 0 {
		n = 1
	}
	var got []message
	for len(got) < n {
		b, err := sock.Recv()
		if errors.Is(err, mangos.ErrRecvTimeout) {
			continue
		}
		if err != nil {
			return got, err
		}
		got = append(got, describe(b))
	}
	return got, nil
}

func (h *host) do(r request) answer {
	a := answer{ID: r.ID}
	var err error
	switch r.Op {
	case "open":
		err = h.open(r)
	case "close":
		err = h.close(r)
	case "handshake":
		var sock mangos.Socket
		if sock, err = h.get(r); err == nil {
			var got []byte
			if got, err = handshake(sock, time.Duration(r.Count)*time.Millisecond); err == nil {
				m := describe(got)
				a.Reply = &m
			}
		}
	case "exchange":
		var sock mangos.Socket
		if sock, err = h.get(r); err == nil {
			var got []byte
			got, err = exchange(sock, payload(r), &a)
			if got != nil || err == nil {
				m := describe(got)
				a.Reply = &m
			}
		}
	case "send":
		var sock mangos.Socket
		if sock, err = h.get(r); err == nil {
			err = sock.Send(payload(r))
		}
	case "recv":
		var sock mangos.Socket
		if sock, err = h.get(r); err == nil {
			a.Messages, err = recvMany(sock, r.Count)
		}
	default:
		err = fmt.Errorf("unknown op %q", r.Op)
	}
	if err != nil {
		a.Error = err.Error()
	} else {
		a.OK = true
	}
	return a
}

func main() {
	dir := flag.String("dir", os.TempDir(), "the socket directory (eKuiper uses /tmp)")
	opts := flag.Bool("print-options", false, "print the options of every channel and exit")
	life := flag.Duration("max-life", 5*time.Minute, "exit after this long, whatever happens")
	flag.Parse()
	if *opts {
		if err := printOptions(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	h := &host{dir: *dir, socks: map[string]mangos.Socket{}, out: json.NewEncoder(os.Stdout)}
	time.AfterFunc(*life, func() {
		h.emit(answer{Error: "max-life reached", Fatal: true})
		os.Exit(3)
	})
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 {
			var r request
			if e := json.Unmarshal(line, &r); e != nil {
				h.emit(answer{Error: "bad command: " + e.Error()})
			} else {
				limit := 20 * time.Second
				if r.TimeoutMs > 0 {
					limit = time.Duration(r.TimeoutMs) * time.Millisecond
				}
				watchdog := time.AfterFunc(limit, func() {
					h.emit(answer{ID: r.ID, Error: fmt.Sprintf("%s did not finish within %v", r.Op, limit), Fatal: true})
					os.Exit(3)
				})
				a := h.do(r)
				watchdog.Stop()
				h.emit(a)
			}
		}
		if err != nil {
			return // EOF: the driver went away
		}
	}
}
