package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/sessiond/sessiond/internal/sessions"
	"github.com/sessiond/sessiond/internal/wire"
)

// handlers parse a request, call the service for the operation (and, for
// a browser, for the cookies that follow from it) and write its answer.
// Rules live in the service, never here.
type handlers struct {
	svc     *sessions.Service
	keys    apiKeys
	cfg     Config
	cookies cookies
}

// sessionJSON is the session object of the API, the same one event
// payloads carry (internal/wire).
type sessionJSON = wire.Session

func toJSON(s sessions.Session) sessionJSON { return wire.FromSession(s) }

func toJSONs(ss []sessions.Session) []sessionJSON { return wire.FromSessions(ss) }

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

type signInRequest struct {
	UserID    string          `json:"user_id"`
	ClientID  string          `json:"client_id"`
	UserAgent string          `json:"user_agent"`
	IPAddress string          `json:"ip_address"`
	Metadata  json.RawMessage `json:"metadata"`
}

type endedJSON struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

type signInResponse struct {
	Session sessionJSON `json:"session"`
	Token   string      `json:"token"`
	Ended   []endedJSON `json:"ended"`
}

type endResponse struct {
	Ended       []sessionJSON `json:"ended"`
	RedirectURL *string       `json:"redirect_url"`
}

type listResponse struct {
	Data       []sessionJSON `json:"data"`
	NextCursor *string       `json:"next_cursor"`
}

// signIn is POST /sessions.
func (h *handlers) signIn(c *gin.Context) {
	var req signInRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	res, err := h.svc.SignIn(c.Request.Context(), callerOf(c), sessions.SignInInput(req))
	if err != nil {
		writeError(c, err)
		return
	}
	ended := make([]endedJSON, 0, len(res.Ended))
	for _, e := range res.Ended {
		ended = append(ended, endedJSON{ID: e.ID, Status: string(e.Status)})
	}
	// The cookies a browser needs for the new session, for the backend to
	// forward unchanged.
	h.cookies.write(c, h.svc.SignInCookies(res))
	c.JSON(http.StatusCreated, signInResponse{Session: toJSON(res.Session), Token: res.Token, Ended: ended})
}

// whoAmI is GET /session, the hot path: authenticate has already looked
// the token up.
func (h *handlers) whoAmI(c *gin.Context) {
	sess, err := h.svc.CurrentSession(callerOf(c))
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, toJSON(sess))
}

// signOut is DELETE /session. It is not behind authenticate: it hands the
// credential to the service, whose SignOut authenticates it (inside the
// sign-out's transaction where it can), and records the caller SignOut
// returns, as authenticate would have.
func (h *handlers) signOut(c *gin.Context) {
	credential, browser, err := h.credential(c)
	if err != nil {
		writeError(c, err) // a duplicated cookie name: nothing is looked up or cleared
		return
	}
	sessionID, namesSession := c.GetQuery("session_id")
	req := sessions.SignOutRequest{Token: credential, Browser: browser, SessionID: sessionID,
		NamesSession: namesSession, RedirectURL: c.Query("redirect_url")}
	if _, isKey, err := h.apiKeyCaller(credential, browser); isKey {
		if err != nil {
			writeError(c, err)
			return
		}
		req.Token, req.Backend = "", true
	}
	out, err := h.svc.SignOut(c.Request.Context(), req)
	if err == nil {
		setCaller(c, out.Caller, browser)
	}
	h.writeEndedWith(c, browser, out.EndResult, out.Cookies, err)
}

func (h *handlers) getSession(c *gin.Context) {
	sess, err := h.svc.GetSession(c.Request.Context(), callerOf(c), c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, toJSON(sess))
}

func (h *handlers) endSession(c *gin.Context) {
	res, err := h.svc.EndSession(c.Request.Context(), callerOf(c), c.Param("id"), c.Query("redirect_url"))
	h.writeEnded(c, res, err)
}

func (h *handlers) listUserSessions(c *gin.Context) {
	q, err := listQuery(c)
	if err != nil {
		writeError(c, err)
		return
	}
	page, err := h.svc.ListUserSessions(c.Request.Context(), callerOf(c), c.Param("id"), q)
	writeList(c, page, err)
}

func (h *handlers) endUserSessions(c *gin.Context) {
	except, err := optionalIDQuery(c, "except")
	if err != nil {
		writeError(c, err)
		return
	}
	res, err := h.svc.EndUserSessions(c.Request.Context(), callerOf(c), c.Param("id"), except, c.Query("redirect_url"))
	h.writeEnded(c, res, err)
}

func (h *handlers) listClientSessions(c *gin.Context) {
	q, err := listQuery(c)
	if err != nil {
		writeError(c, err)
		return
	}
	page, err := h.svc.ListClientSessions(c.Request.Context(), callerOf(c), c.Param("id"), q)
	writeList(c, page, err)
}

func (h *handlers) endClientSessions(c *gin.Context) {
	res, err := h.svc.EndClientSessions(c.Request.Context(), callerOf(c), c.Param("id"), c.Query("redirect_url"))
	h.writeEnded(c, res, err)
}

// optionalIDQuery reads an optional session ID parameter. Present but
// empty is invalid_id, not "absent": an empty ?except= must not widen
// "sign out other devices" into "sign out everywhere".
func optionalIDQuery(c *gin.Context, name string) (string, error) {
	v, present := c.GetQuery(name)
	if present && v == "" {
		return "", sessions.EmptyIDParameter(name)
	}
	return v, nil
}

// writeEnded answers an ending call. When the caller came with its
// cookies, the answer clears those of the sessions that ended and, when
// its own session ended, makes another account active or clears the
// active cookie (sessions.Service.CookiesAfterEnd).
func (h *handlers) writeEnded(c *gin.Context, res sessions.EndResult, err error) {
	var ch sessions.CookieChanges
	if err == nil {
		ch = h.svc.CookiesAfterEnd(c.Request.Context(), callerOf(c), browserOf(c), res)
	}
	h.writeEndedWith(c, browserOf(c), res, ch, err)
}

// writeEndedWith answers an ending call whose cookie changes are known. A
// 401 here means the caller's own session ended while the request ran (or,
// for DELETE /session, that the credential was refused): refuse clears
// the browser's dead cookies, as authenticate does.
func (h *handlers) writeEndedWith(c *gin.Context, browser *sessions.Browser, res sessions.EndResult, ch sessions.CookieChanges, err error) {
	if err != nil {
		h.refuse(c, browser, err)
		return
	}
	h.cookies.write(c, ch)
	c.JSON(http.StatusOK, endResponse{Ended: toJSONs(res.Ended), RedirectURL: nullIfEmpty(res.RedirectURL)})
}

type switchActiveRequest struct {
	SessionID string `json:"session_id"`
}

// switchActive is POST /session/active: make another account the
// browser holds the active one.
func (h *handlers) switchActive(c *gin.Context) {
	var req switchActiveRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	browser, err := h.cookies.browser(c.Request)
	if err != nil {
		writeError(c, sessions.ErrUnauthenticated) // a duplicated cookie name: nothing changes
		return
	}
	sess, ch, err := h.svc.SwitchActive(c.Request.Context(), browser, req.SessionID)
	h.cookies.write(c, ch)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, toJSON(sess))
}

func writeList(c *gin.Context, page sessions.Page, err error) {
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, listResponse{Data: toJSONs(page.Sessions), NextCursor: nullIfEmpty(page.NextCursor)})
}

func listQuery(c *gin.Context) (sessions.ListQuery, error) {
	q := sessions.ListQuery{Status: c.Query("status"), Cursor: c.Query("cursor")}
	if s, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(s)
		if err != nil || n == 0 {
			return q, &sessions.Error{Code: sessions.CodeInvalidRequest, Message: "The request has invalid fields.",
				Fields: map[string]string{"limit": "must be from 1 to 100"}}
		}
		q.Limit = n
	}
	return q, nil
}

// decodeJSON reads a JSON object body into v: application/json only, no
// unknown fields, nothing after the object, and within the body limit.
func decodeJSON(c *gin.Context, v any) error {
	mediaType, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || mediaType != "application/json" {
		return sessions.Errorf(codeUnsupportedMediaType, "The body must be application/json.")
	}
	body, err := io.ReadAll(c.Request.Body)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return sessions.Errorf(codePayloadTooLarge, "The body must be at most %d bytes.", tooLarge.Limit)
	}
	if err != nil {
		return sessions.Errorf(sessions.CodeInvalidRequest, "The body could not be read.")
	}
	if err := exactFields(body, v); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return sessions.Errorf(sessions.CodeInvalidRequest, "The body must hold exactly one JSON object.")
	}
	return nil
}

// jsonError describes a decoding error without echoing the body.
func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return &sessions.Error{Code: sessions.CodeInvalidRequest, Message: "The request has invalid fields.",
			Fields: map[string]string{typeErr.Field: fmt.Sprintf("must be a JSON %s", jsonTypeName(typeErr.Type.Kind().String()))}}
	}
	if field, ok := unknownField(err); ok {
		return &sessions.Error{Code: sessions.CodeInvalidRequest, Message: "The request has invalid fields.",
			Fields: map[string]string{field: "is not a field of this request"}}
	}
	return sessions.Errorf(sessions.CodeInvalidRequest, "The body is not a JSON object.")
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "slice":
		return "object" // json.RawMessage: metadata
	default:
		return kind
	}
}

// unknownField extracts the name from encoding/json's `json: unknown field "x"`.
func unknownField(err error) (string, bool) {
	const prefix = `json: unknown field "`
	msg := err.Error()
	if len(msg) > len(prefix)+1 && msg[:len(prefix)] == prefix && msg[len(msg)-1] == '"' {
		name := msg[len(prefix) : len(msg)-1]
		if len(name) <= 64 {
			return name, true
		}
	}
	return "", false
}

// exactFields refuses a body whose object names a field of v in another
// case ("USER_ID") or names one twice: encoding/json would take either,
// the last one winning, so a gateway that read the first user_id and
// sessiond would disagree about whom the request is for. Anything that is
// not an object is left to the decoder's own errors.
func exactFields(body []byte, v any) error {
	names := map[string]bool{}
	t := reflect.TypeOf(v).Elem()
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			names[name] = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := tok.(string)
		switch {
		case !names[key]:
			return &sessions.Error{Code: sessions.CodeInvalidRequest, Message: "The request has invalid fields.",
				Fields: map[string]string{fieldName(key): "is not a field of this request (names are case-sensitive)"}}
		case seen[key]:
			return &sessions.Error{Code: sessions.CodeInvalidRequest, Message: "The request has invalid fields.",
				Fields: map[string]string{key: "must be given at most once"}}
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
	}
	return nil
}
