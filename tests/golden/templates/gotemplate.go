// Go's text/template on each case of cases.json: what eKuiper's template engine makes of it.
// eKuiper adds functions (sprig) to its templates; the cases use none, so plain text/template is the same.
//
// Regenerate:  go run gotemplate.go < cases.json > cases.json.new && mv cases.json.new cases.json
package main

import (
	"bytes"
	"encoding/json"
	"os"
	"text/template"
)

type goResult struct {
	Parsed bool   `json:"parsed"`
	OK     bool   `json:"ok"`
	Out    string `json:"out"`
}

type tcase struct {
	Template string          `json:"template"`
	Data     json.RawMessage `json:"data"`
	Go       goResult        `json:"go"`
}

func main() {
	var cases []tcase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		panic(err)
	}
	for i := range cases {
		c := &cases[i]
		var data interface{}
		if err := json.Unmarshal(c.Data, &data); err != nil {
			panic(err)
		}
		c.Go = goResult{}
		t, err := template.New("sink").Parse(c.Template)
		if err != nil {
			continue
		}
		c.Go.Parsed = true
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			continue
		}
		c.Go.OK = true
		c.Go.Out = b.String()
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(cases); err != nil {
		panic(err)
	}
}
