const config = require("../config");
const project = require("../project.config.json");
const app = require("../app.json");
const fs = require("fs");
const path = require("path");

test("project.config.json and config.js name the same AppID", () => {
  expect(project.appid).toBe(config.appid);
});

test("every page in app.json exists with its four files", () => {
  for (const page of app.pages) {
    for (const ext of ["js", "json", "wxml", "wxss"]) {
      expect(fs.existsSync(path.join(__dirname, "..", `${page}.${ext}`))).toBe(true);
    }
  }
});
