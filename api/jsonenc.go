package api

import (
	"strconv"
	"sync"
	"time"

	"github.com/omnirouter/omnirouter/internal/jsonstr"

	"github.com/gin-gonic/gin"

	"github.com/omnirouter/omnirouter/capacity"
	"github.com/omnirouter/omnirouter/routing"
)

// The conversation and agent answers are the API's hot path: every write
// returns one. Instead of encoding/json reflecting over a view struct built
// for the purpose (with a heap string per timestamp), these appenders write
// the bytes straight from the routing value into a pooled buffer. Their
// tests hold them to json.Marshal of view structs of the documented shape
// (ConversationView lives in the tests; AgentView also serves agent lists).

const jsonContentType = "application/json; charset=utf-8"

var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooledJSON keeps a rare huge answer (a long transcript) from pinning
// its buffer in the pool.
const maxPooledJSON = 64 << 10

// writeJSON answers with the bytes fill appends, as c.JSON would (same
// content type), without reflection.
func writeJSON(c *gin.Context, status int, fill func([]byte) []byte) {
	bp := jsonBufs.Get().(*[]byte)
	b := fill((*bp)[:0])
	c.Data(status, jsonContentType, b)
	if cap(b) <= maxPooledJSON {
		*bp = b
		jsonBufs.Put(bp)
	}
}

func writeConversationJSON(c *gin.Context, status int, conv *routing.Conversation) {
	writeJSON(c, status, func(b []byte) []byte { return appendConversationJSON(b, conv) })
}

func writeAgentJSON(c *gin.Context, status int, a *routing.Agent) {
	writeJSON(c, status, func(b []byte) []byte { return appendAgentJSON(b, a) })
}

// appendConversationJSON appends a conversation as DESIGN.md §5 shapes it
// (TestConversationJSONMatchesMarshal holds it to a struct of that shape).
func appendConversationJSON(b []byte, c *routing.Conversation) []byte {
	b = append(b, `{"id":`...)
	b = jsonstr.Append(b, c.ID)
	b = append(b, `,"channel":`...)
	b = jsonstr.Append(b, c.Channel.String())
	b = append(b, `,"client":`...)
	if c.Channel == capacity.Chat {
		client := c.Client
		if client == routing.ClientNone {
			client = routing.ClientWeb
		}
		b = jsonstr.Append(b, client.String())
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"push_enabled":`...)
	b = strconv.AppendBool(b, c.PushEnabled)
	b = append(b, `,"priority":`...)
	b = strconv.AppendInt(b, int64(c.Priority), 10)
	b = append(b, `,"skills":`...)
	b = appendJSONStrings(b, c.Skills)
	b = append(b, `,"optional_skills":`...)
	b = appendJSONStrings(b, c.OptionalSkills)
	b = append(b, `,"group":`...)
	b = jsonstr.Append(b, c.Group)
	b = append(b, `,"secondary_groups":`...)
	b = appendJSONStrings(b, c.SecondaryGroups)
	b = append(b, `,"visitor_id":`...)
	b = jsonstr.Append(b, c.VisitorID)
	b = append(b, `,"subject":`...)
	b = jsonstr.Append(b, c.Subject)
	b = append(b, `,"state":`...)
	b = jsonstr.Append(b, c.State.String())
	b = append(b, `,"activity":`...)
	b = jsonstr.Append(b, c.Activity.String())
	b = append(b, `,"agent_id":`...)
	b = jsonstr.Append(b, c.AgentID)
	b = append(b, `,"missed":`...)
	b = strconv.AppendBool(b, c.Missed)
	b = append(b, `,"ended_reason":`...)
	b = jsonstr.Append(b, c.EndedReason)
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, c.CreatedAt)
	b = append(b, `,"queued_at":`...)
	b = appendJSONTime(b, c.QueuedAt)
	b = append(b, `,"ended_at":`...)
	b = appendJSONTime(b, c.EndedAt)
	b = append(b, `,"ticket":`...)
	if t := c.Ticket; t != nil {
		b = append(b, `{"id":`...)
		b = jsonstr.Append(b, t.ID)
		b = append(b, `,"status":`...)
		b = jsonstr.Append(b, t.Status.String())
		b = append(b, `,"created_at":`...)
		b = appendJSONTime(b, t.CreatedAt)
		b = append(b, `,"via":`...)
		b = jsonstr.Append(b, t.Via)
		b = append(b, '}')
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"transcript":[`...)
	for i := range c.Transcript {
		m := &c.Transcript[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"author":`...)
		b = jsonstr.Append(b, m.Author.String())
		if m.AgentID != "" {
			b = append(b, `,"agent_id":`...)
			b = jsonstr.Append(b, m.AgentID)
		}
		b = append(b, `,"text":`...)
		b = jsonstr.Append(b, m.Text)
		b = append(b, `,"at":`...)
		b = appendJSONTime(b, m.At)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendAgentJSON appends json.Marshal(agentView(a)).
func appendAgentJSON(b []byte, a *routing.Agent) []byte {
	b = append(b, `{"id":`...)
	b = jsonstr.Append(b, a.ID)
	b = append(b, `,"name":`...)
	b = jsonstr.Append(b, a.Name)
	b = append(b, `,"status":`...)
	b = jsonstr.Append(b, a.Status.String())
	b = append(b, `,"capacity":`...)
	b = appendJSONChannels(b, a.Capacity)
	b = append(b, `,"load":`...)
	b = appendJSONChannels(b, a.Load)
	b = append(b, `,"skills":`...)
	b = appendJSONStrings(b, a.Skills)
	b = append(b, `,"groups":`...)
	b = appendJSONStrings(b, a.Groups)
	b = append(b, `,"conversations":`...)
	b = appendJSONStrings(b, a.Conversations)
	return append(b, '}')
}

func appendJSONChannels(b []byte, v [capacity.NumChannels]int) []byte {
	b = append(b, `{"chat":`...)
	b = strconv.AppendInt(b, int64(v[capacity.Chat]), 10)
	b = append(b, `,"messaging":`...)
	b = strconv.AppendInt(b, int64(v[capacity.Messaging]), 10)
	b = append(b, `,"email":`...)
	b = strconv.AppendInt(b, int64(v[capacity.Email]), 10)
	b = append(b, `,"voice":`...)
	b = strconv.AppendInt(b, int64(v[capacity.Voice]), 10)
	return append(b, '}')
}

// appendJSONStrings writes nil as [], as the views' nonNil does.
func appendJSONStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonstr.Append(b, s)
	}
	return append(b, ']')
}

// appendJSONTime writes unix milliseconds as the views' times: a quoted
// appendTime (its layout needs no escaping), null when unset.
func appendJSONTime(b []byte, ms int64) []byte {
	if ms == 0 {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = appendTime(b, ms)
	return append(b, '"')
}

// appendTime writes unix milliseconds in timeLayout (RFC 3339 UTC with
// milliseconds), the one format of every time the API returns.
func appendTime(b []byte, ms int64) []byte {
	if ms > 0 && ms <= maxFastTime {
		return appendRFC3339Milli(b, ms)
	}
	return time.UnixMilli(ms).UTC().AppendFormat(b, timeLayout)
}

// maxFastTime is 9999-12-31T23:59:59.999Z: up to there every year has four
// digits and appendRFC3339Milli writes what timeLayout would.
const maxFastTime = 253402300799999

// appendRFC3339Milli writes a positive unix millisecond time as
// 2006-01-02T15:04:05.000Z without going through time.Time's layout
// interpreter (it was half the cost of a conversation answer).
func appendRFC3339Milli(b []byte, ms int64) []byte {
	days, rem := ms/86400000, ms%86400000
	y, m, d := civil(days)
	b = append4(b, y)
	b = append(b, '-')
	b = append2(b, m)
	b = append(b, '-')
	b = append2(b, d)
	b = append(b, 'T')
	b = append2(b, int(rem/3600000))
	b = append(b, ':')
	b = append2(b, int(rem/60000%60))
	b = append(b, ':')
	b = append2(b, int(rem/1000%60))
	b = append(b, '.')
	msec := int(rem % 1000)
	b = append(b, byte('0'+msec/100), byte('0'+msec/10%10), byte('0'+msec%10))
	return append(b, 'Z')
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's days_from_civil, inverted).
func civil(days int64) (year, month, day int) {
	z := days + 719468
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	day = int(doy - (153*mp+2)/5 + 1)
	month = int(mp + 3)
	if month > 12 {
		month -= 12
	}
	year = int(yoe + era*400)
	if month <= 2 {
		year++
	}
	return year, month, day
}

func append2(b []byte, v int) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }

func append4(b []byte, v int) []byte {
	return append(b, byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
}
