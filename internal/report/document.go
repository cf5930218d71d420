package report

import (
	"time"
)

// Document is the flat JSON form of a Record that the file and
// Elasticsearch sinks write: one level of fields with stable types, so that
// log shippers and index mappings need no knowledge of policies.
type Document struct {
	Timestamp  time.Time `json:"@timestamp"`
	Source     string    `json:"source"`
	PolicyID   string    `json:"policyId"`
	PolicyName string    `json:"policyName"`
	Severity   string    `json:"severity"`
	Category   string    `json:"category,omitempty"`
	Enforced   bool      `json:"enforced"`

	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	UID        string `json:"uid,omitempty"`
	Workspace  string `json:"workspace,omitempty"`

	FluxOwnerKind      string `json:"fluxOwnerKind,omitempty"`
	FluxOwnerNamespace string `json:"fluxOwnerNamespace,omitempty"`
	FluxOwnerName      string `json:"fluxOwnerName,omitempty"`

	// Message joins the occurrence messages.
	Message     string               `json:"message"`
	Occurrences []DocumentOccurrence `json:"occurrences"`

	// Operation, User and Denied are set for admission records only.
	Operation string `json:"operation,omitempty"`
	User      string `json:"user,omitempty"`
	Denied    *bool  `json:"denied,omitempty"`
}

// DocumentOccurrence is one occurrence of a Document. RecommendedValue is
// JSON text because policies return values of any type.
type DocumentOccurrence struct {
	Message          string `json:"msg"`
	ViolatingKey     string `json:"violatingKey,omitempty"`
	RecommendedValue string `json:"recommendedValue,omitempty"`
}

// NewDocument flattens a record.
func NewDocument(r *Record) Document {
	d := Document{
		Timestamp:  r.Time.UTC(),
		Source:     r.Source,
		PolicyID:   r.PolicyID,
		PolicyName: r.PolicyName,
		Severity:   r.Severity,
		Category:   r.Category,
		Enforced:   r.Enforced,
		APIVersion: r.Object.APIVersion,
		Kind:       r.Object.Kind,
		Namespace:  r.Object.Namespace,
		Name:       r.Object.Name,
		UID:        r.Object.UID,
		Workspace:  r.Workspace,
		Message:    r.Message(),
	}
	if r.FluxOwner != nil {
		d.FluxOwnerKind, d.FluxOwnerNamespace, d.FluxOwnerName = r.FluxOwner.Kind, r.FluxOwner.Namespace, r.FluxOwner.Name
	}
	d.Occurrences = make([]DocumentOccurrence, len(r.Occurrences))
	for i, o := range r.Occurrences {
		d.Occurrences[i] = DocumentOccurrence{
			Message:          o.Message,
			ViolatingKey:     o.ViolatingKey,
			RecommendedValue: recommendedValueText(o.RecommendedValue),
		}
	}
	if r.Admission != nil {
		denied := r.Admission.Denied
		d.Operation, d.User, d.Denied = r.Admission.Operation, r.Admission.User, &denied
	}
	return d
}
