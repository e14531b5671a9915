package audit

import (
	"fmt"
	"strings"
)

type explainOptions struct {
	credentials *bool
}

// ExplainOption adds what the audit event does not say.
type ExplainOption func(*explainOptions)

// SentCredentials says whether the request carried credentials: a 401's
// event does not (kube-apiserver v1.37 logs "Unauthorized" with no user
// either way), and the lab knows it for the requests it sends itself.
func SentCredentials(sent bool) ExplainOption {
	return func(o *explainOptions) { o.credentials = &sent }
}

// Explain says in English why the request got its status: who
// authentication made of it, and what authorization decided and why, in
// kube-apiserver's own words. For example:
//
//	authenticated as system:anonymous (groups system:unauthenticated) → authorization: forbid
//	not authenticated (401): anonymous requests are off
func Explain(o Observation, opts ...ExplainOption) string { return ExplainIn(o, "en", opts...) }

// ExplainIn is Explain in lang: "ja", or English for any other.
func ExplainIn(o Observation, lang string, opts ...ExplainOption) string {
	var eo explainOptions
	for _, opt := range opts {
		opt(&eo)
	}
	w := words["en"]
	if l, ok := words[lang]; ok {
		w = l
	}
	if !o.Authenticated() {
		switch {
		case o.Code != 401:
			// Refused before authentication, or logged with no user for
			// another reason.
			return fmt.Sprintf(w.noUser, o.Code)
		case eo.credentials == nil:
			return w.unauthorized
		case *eo.credentials:
			return w.rejected
		default:
			return w.anonymousOff
		}
	}
	who := fmt.Sprintf(w.as, o.User)
	if len(o.Groups) > 0 {
		who += fmt.Sprintf(w.groups, strings.Join(o.Groups, ", "))
	}
	if o.Decision == "" {
		return who + fmt.Sprintf(w.noDecision, o.Code)
	}
	s := who + w.authz + o.Decision
	if o.AuthzReason != "" {
		s += " — " + o.AuthzReason
	}
	return s
}

type phrases struct {
	as, groups, authz, noDecision, anonymousOff, rejected, unauthorized, noUser string
}

var words = map[string]phrases{
	"en": {
		as:           "authenticated as %s",
		groups:       " (groups %s)",
		authz:        " → authorization: ",
		noDecision:   " → no authorization decision logged (%d)",
		anonymousOff: "not authenticated (401): anonymous requests are off",
		rejected:     "not authenticated (401): the credentials were rejected",
		unauthorized: "not authenticated (401): invalid credentials, or none while anonymous requests are off",
		noUser:       "no user logged (%d)",
	},
	"ja": {
		as:           "%s として認証",
		groups:       " (グループ %s)",
		authz:        " → 認可: ",
		noDecision:   " → 認可の判定は記録なし (%d)",
		anonymousOff: "認証されていません (401): 匿名リクエストは無効です",
		rejected:     "認証されていません (401): 認証情報が拒否されました",
		unauthorized: "認証されていません (401): 認証情報が無効、または認証情報なしで匿名リクエストが無効です",
		noUser:       "ユーザーの記録なし (%d)",
	},
}
