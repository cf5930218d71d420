package main

import (
	"flag"
	"strings"
	"testing"
)

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr []string
	}{
		{name: "defaults", args: nil},
		{name: "gc percent zero", args: []string{"--gc-percent=0"}, wantErr: []string{"invalid --gc-percent 0"}},
		{name: "negative policy timeout", args: []string{"--policy-timeout=-1s"}, wantErr: []string{"invalid --policy-timeout -1s"}},
		{name: "negative parallelism", args: []string{"--policy-parallelism=-1"}, wantErr: []string{"invalid --policy-parallelism -1"}},
		{name: "port out of range", args: []string{"--webhook-port=70000"}, wantErr: []string{"invalid --webhook-port 70000"}},
		{name: "negative audit debounce", args: []string{"--audit-debounce=-1s"}, wantErr: []string{"invalid --audit-debounce -1s"}},
		{name: "enforcement timeout above 30s", args: []string{"--enforcement-timeout=60s"}, wantErr: []string{"invalid --enforcement-timeout 1m0s"}},
		{
			name:    "every problem at once",
			args:    []string{"--gc-percent=-5", "--audit-workers=-1"},
			wantErr: []string{"invalid --gc-percent -5", "invalid --audit-workers -1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts options
			fs := flag.NewFlagSet("manager", flag.ContinueOnError)
			opts.bind(fs)
			if err := fs.Parse(append([]string{"--namespace=td-system"}, tt.args...)); err != nil {
				t.Fatalf("parse flags: %v", err)
			}
			err := opts.validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Errorf("validate() = %v, want no error", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("validate() = nil, want errors %q", tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("validate() = %q, want it to contain %q", err, want)
				}
			}
		})
	}
}
