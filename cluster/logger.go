package cluster

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// slogLogger routes raft's hclog output to a *slog.Logger. Levels below
// min (INFO by default) are dropped.
type slogLogger struct {
	l    *slog.Logger
	name string
	args []any
	min  hclog.Level
}

func newHCLogger(l *slog.Logger, name string) hclog.Logger {
	return &slogLogger{l: l, name: name, min: hclog.Info}
}

var _ hclog.Logger = (*slogLogger)(nil)

func toSlogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace, hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (s *slogLogger) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off || level < s.min {
		return
	}
	lv := toSlogLevel(level)
	ctx := context.Background()
	if !s.l.Enabled(ctx, lv) {
		return
	}
	all := make([]any, 0, len(s.args)+len(args)+2)
	if s.name != "" {
		all = append(all, "component", s.name)
	}
	all = append(all, s.args...)
	for _, a := range args {
		// raft passes hclog.Fmt values to be formatted lazily, as hclog would.
		if f, ok := a.(hclog.Format); ok && len(f) > 0 {
			if format, ok := f[0].(string); ok {
				a = fmt.Sprintf(format, f[1:]...)
			}
		}
		all = append(all, a)
	}
	s.l.Log(ctx, lv, msg, all...)
}

func (s *slogLogger) Trace(msg string, args ...any) { s.Log(hclog.Trace, msg, args...) }
func (s *slogLogger) Debug(msg string, args ...any) { s.Log(hclog.Debug, msg, args...) }
func (s *slogLogger) Info(msg string, args ...any)  { s.Log(hclog.Info, msg, args...) }
func (s *slogLogger) Warn(msg string, args ...any)  { s.Log(hclog.Warn, msg, args...) }
func (s *slogLogger) Error(msg string, args ...any) { s.Log(hclog.Error, msg, args...) }

func (s *slogLogger) IsTrace() bool { return s.min <= hclog.Trace }
func (s *slogLogger) IsDebug() bool { return s.min <= hclog.Debug }
func (s *slogLogger) IsInfo() bool  { return s.min <= hclog.Info }
func (s *slogLogger) IsWarn() bool  { return s.min <= hclog.Warn }
func (s *slogLogger) IsError() bool { return s.min <= hclog.Error }

func (s *slogLogger) ImpliedArgs() []any { return s.args }

func (s *slogLogger) With(args ...any) hclog.Logger {
	c := *s
	c.args = append(append([]any(nil), s.args...), args...)
	return &c
}

func (s *slogLogger) Name() string { return s.name }

func (s *slogLogger) Named(name string) hclog.Logger {
	c := *s
	if c.name != "" {
		c.name += "." + name
	} else {
		c.name = name
	}
	return &c
}

func (s *slogLogger) ResetNamed(name string) hclog.Logger {
	c := *s
	c.name = name
	return &c
}

func (s *slogLogger) SetLevel(level hclog.Level) { s.min = level }
func (s *slogLogger) GetLevel() hclog.Level      { return s.min }

func (s *slogLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(s.StandardWriter(opts), "", 0)
}

func (s *slogLogger) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		msg := string(p)
		if n := len(msg); n > 0 && msg[n-1] == '\n' {
			msg = msg[:n-1]
		}
		s.Info(msg)
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
